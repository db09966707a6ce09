"""Converters: PDF, DOCX, HTML and text files -> Documents, on small files the tests write with the
real libraries (pypdf writes the PDFs, python-docx the DOCX files), and every bad input a user may
have: each must give one clear `DocumentError` line, never a traceback or a page of warnings."""

from __future__ import annotations

import datetime
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rag.chunking import ChunkSettings, chunk_document
from rag.converters.base import convert, converter_for, converters
from rag.errors import DocumentError

ROOT = Path(__file__).resolve().parent.parent
PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")


# --- PDF -------------------------------------------------------------------------------------------


def make_pdf(path: Path, pages: list[list[str]], *, outline=(), metadata=None, password=None,
             algorithm: str = "AES-128") -> Path:
    """A PDF whose pages show `pages` (lines of Helvetica text; an empty list is a page without
    text, as a scan is), with bookmarks (title, page index), an info dictionary and encryption."""
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject

    def name(value: str) -> NameObject:
        return NameObject(value)

    # WinAnsi encoding, with byte 1 drawn as the "fi" ligature glyph (as TeX fonts do).
    encoding = DictionaryObject({name("/Type"): name("/Encoding"), name("/BaseEncoding"): name("/WinAnsiEncoding"),
                                 name("/Differences"): ArrayObject([NumberObject(1), name("/fi")])})
    font = DictionaryObject({name("/Type"): name("/Font"), name("/Subtype"): name("/Type1"),
                             name("/BaseFont"): name("/Helvetica"), name("/Encoding"): encoding})
    writer = PdfWriter()
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        if not lines:
            continue
        shown = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").replace("ﬁ", "\\001") for line in lines]
        stream = DecodedStreamObject()
        stream.set_data("\n".join(["BT /F1 11 Tf 14 TL 72 720 Td"] + [f"({line}) Tj T*" for line in shown] + ["ET"]).encode("cp1252"))
        page.replace_contents(stream)
        page[name("/Resources")] = DictionaryObject({name("/Font"): DictionaryObject({name("/F1"): font})})
    for title, page_index in outline:
        writer.add_outline_item(title=title, page_number=page_index)
    if metadata:
        writer.add_metadata(metadata)
    if password is not None:
        writer.encrypt(user_password=password, owner_password="owner-secret", algorithm=algorithm)
    writer.write(path)
    return path


def page_texts(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(path).pages]


REPORT_PAGES = [
    ["Harbour Study", "1 Introduction", "The harbour was dredged in 2019. Ships of the new class can now",
     "enter at low tide. The infor-", "mation below comes from the port's ﬁnal report."],
    ["2 Methods", "Depths were measured every spring. The second survey used sonar from a boat.",
     "3 Results", "The channel is now eleven metres deep."],
]
REPORT_OUTLINE = [("Introduction", 0), ("2 Methods", 1), ("3 Results", 1)]


@pytest.fixture
def report(tmp_path):
    return make_pdf(tmp_path / "harbour-study.pdf", REPORT_PAGES, outline=REPORT_OUTLINE,
                    metadata={"/Title": "The Harbour Study", "/Author": "Jane Doe; John Roe",
                              "/CreationDate": "D:20240131120000+01'00'"})


def test_pdf_text_pages_and_metadata(report):
    document = convert(report, "docs/harbour-study.pdf")
    assert document.source == "docs/harbour-study.pdf"
    assert "The harbour was dredged in 2019." in document.text
    assert "The channel is now eleven metres deep." in document.text
    assert document.title == "The Harbour Study"
    assert document.metadata == {"format": "pdf", "pages": 2, "authors": ["Jane Doe", "John Roe"], "date": "2024-01-31"}
    texts = page_texts(report)
    assert document.page_starts == [0, len(texts[0]) + 2]


def test_a_sentence_on_page_two_maps_to_its_span_in_page_two(report):
    document = convert(report, "harbour-study.pdf")
    texts = page_texts(report)
    for sentence, page in [("The second survey used sonar from a boat.", 2), ("The harbour was dredged in 2019.", 1),
                           ("The channel is now eleven metres deep.", 2)]:
        start = document.text.index(sentence)
        number, page_start, page_end = document.page_span(*document.original_span(start, start + len(sentence)))
        assert number == page
        assert texts[page - 1][page_start:page_end] == sentence


def test_pdf_bookmarks_become_sections_that_the_chunker_follows(report):
    document = convert(report, "harbour-study.pdf")
    # The page's "1 Introduction" is found for the bookmark "Introduction".
    assert [heading for _, heading in document.sections] == ["1 Introduction", "2 Methods", "3 Results"]
    for start, heading in document.sections:
        # Each heading is a block of its own, as the chunker needs, and maps to its page.
        assert document.text[start - 2:start] == "\n\n" and document.text[start + len(heading):][:2] == "\n\n"
        page, _, _ = document.page_span(*document.original_span(start, start + len(heading)))
        assert page == {"1 Introduction": 1, "2 Methods": 2, "3 Results": 2}[heading]
    # (These sections are tiny; the chunker would join them to the next unless told they may stand alone.)
    chunks = chunk_document(document, lambda text: len(text.split()), ChunkSettings(min_section_tokens=1))
    sonar = next(chunk for chunk in chunks if "sonar" in chunk.text)
    assert sonar.section == "2 Methods" and sonar.page == 2


def test_pdf_without_bookmarks_has_no_sections_and_takes_its_first_line_as_title(tmp_path):
    path = make_pdf(tmp_path / "notes.pdf", [["Field Notes", "We counted forty birds on the island."]],
                    metadata={"/Title": "Microsoft Word - notes_v2.doc"})
    document = convert(path, "notes.pdf")
    assert document.sections == []
    assert document.title == "Field Notes"  # the producer's file-name title is no title
    assert document.metadata == {"format": "pdf", "pages": 1}


def test_pdf_title_falls_back_to_the_file_name(tmp_path):
    long_line = "word " * 40
    document = convert(make_pdf(tmp_path / "site_survey-2024.pdf", [[long_line]], metadata={"/Title": "untitled"}), "s.pdf")
    assert document.title == "site survey 2024"


def test_pdf_words_split_at_a_line_end_are_joined_and_ligatures_spelled_out(report):
    document = convert(report, "harbour-study.pdf")
    assert "The information below comes from the port's final report." in document.text
    start = document.text.index("information")
    page, page_start, page_end = document.page_span(*document.original_span(start, start + len("information")))
    assert page_texts(report)[0][page_start:page_end] == "infor-\nmation"
    # "ﬁnal" is "final" in the clean text and still the one ligature character in the page.
    start = document.text.index("final")
    _, page_start, page_end = document.page_span(*document.original_span(start, start + len("final")))
    assert page_texts(report)[0][page_start:page_end] == "ﬁnal"


def test_pdf_bookmarks_are_found_when_the_title_wraps_or_follows_a_page_number(tmp_path):
    pages = [["Preface text comes first and is long enough to be prose of its own.",
              "A Very Long Heading That Wraps Onto", "A Second Line",
              "Body of the long section.", "12 Appendix B Data Tables", "Tables follow here."]]
    outline = [("A very long heading that wraps onto a second line", 0), ("B Data Tables", 0), ("Not On This Page", 0)]
    document = convert(make_pdf(tmp_path / "wrapped.pdf", pages, outline=outline), "wrapped.pdf")
    assert [heading for _, heading in document.sections] == ["A Very Long Heading That Wraps Onto A Second Line", "B Data Tables"]
    # The label and page number before a title stay in its heading block, out of the section's name.
    assert "\n\nBody of the long section.\n\n12 Appendix B Data Tables\n\nTables follow here." in document.text


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_an_encrypted_pdf_that_opens_without_a_password_is_read(tmp_path, algorithm):
    path = make_pdf(tmp_path / "locked-for-printing.pdf", [["Printing is restricted, reading is not."]], password="", algorithm=algorithm)
    assert convert(path, "x.pdf").text == "Printing is restricted, reading is not."


def _error(path: Path, capfd) -> str:
    with pytest.raises(DocumentError) as caught:
        convert(path, path.name)
    message = str(caught.value)
    assert "\n" not in message
    assert capfd.readouterr().err == ""  # no warnings from pypdf on stderr
    return message


def test_pdf_bad_inputs_give_one_line_errors(tmp_path, capfd):
    good = make_pdf(tmp_path / "good.pdf", [["Some text on a page."]]).read_bytes()
    cases = {
        "empty.pdf": (b"", "not a readable PDF (the file is empty)"),
        "random.pdf": (random.Random(7).randbytes(3000), "not a readable PDF (no PDF header: the file is something else)"),
        "letter.pdf": (b"Dear Sir,\nthis is a text file named .pdf.\n", "not a readable PDF (no PDF header: the file is something else)"),
        "cut.pdf": (good[:40], "not a readable PDF (damaged or cut short: "),
        "garbled.pdf": (good[:9] + random.Random(7).randbytes(len(good) - 9), "not a readable PDF (damaged or cut short: "),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert _error(tmp_path / name, capfd).startswith(message), name
    assert _error(make_pdf(tmp_path / "none.pdf", []), capfd) == "the PDF has no pages"
    assert _error(make_pdf(tmp_path / "secret.pdf", [["Secret."]], password="hunter2"), capfd) == \
        "encrypted PDF; pakus cannot read password-protected files"
    assert _error(make_pdf(tmp_path / "scan.pdf", [[], []]), capfd) == "no text layer (scanned?); pakus does not do OCR"


def test_a_damaged_but_readable_pdf_is_read_quietly(tmp_path, capfd):
    """A cross-reference table pointing to the wrong places: pypdf repairs it and warns; pakus reads
    the text and prints nothing."""
    data = make_pdf(tmp_path / "ok.pdf", [["The text survives the damage."]]).read_bytes()
    start = data.rindex(b"startxref")
    damaged = data[:start] + b"startxref\n999999\n%%EOF\n"
    (tmp_path / "damaged.pdf").write_bytes(damaged)
    assert convert(tmp_path / "damaged.pdf", "damaged.pdf").text == "The text survives the damage."
    assert capfd.readouterr().err == ""


# --- DOCX ------------------------------------------------------------------------------------------


def make_docx(path: Path, *, title: str = "", author: str | None = None, created: datetime.datetime | None = None,
              with_title_paragraph: bool = True) -> Path:
    import docx

    word = docx.Document()
    word.core_properties.title = title
    if author is not None:
        word.core_properties.author = author
    if created is not None:
        word.core_properties.created = created
    if with_title_paragraph:
        word.add_paragraph("Quarterly Report", style="Title")
    word.add_paragraph("Written for the board.")
    word.add_heading("Summary", level=1)
    word.add_paragraph("Sales grew by 5 * 3 percent; see __init__ and #hashtags.")
    word.add_paragraph("First point", style="List Bullet")
    word.add_paragraph("Second point", style="List Number")
    word.add_heading("Figures by region", level=2)
    table = word.add_table(rows=3, cols=3)
    for r, row in enumerate([["Region", "Q1", "Q2"], ["North", "10", "12"], ["South", "7", "9"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    word.add_paragraph("The table ends here.")
    word.save(str(path))
    return path


def test_docx_paragraphs_headings_lists_and_tables_in_order(tmp_path):
    path = make_docx(tmp_path / "report.docx", author="Jane Doe", created=datetime.datetime(2024, 3, 5, 10, 0))
    document = convert(path, "report.docx")
    assert document.text == (
        "Quarterly Report\n\nWritten for the board.\n\nSummary\n\n"
        "Sales grew by 5 * 3 percent; see __init__ and #hashtags.\n\n- First point\n\n- Second point\n\n"
        "Figures by region\n\nRegion | Q1 | Q2\n\nNorth | 10 | 12\n\nSouth | 7 | 9\n\nThe table ends here.")
    assert [heading for _, heading in document.sections] == ["Quarterly Report", "Summary", "Figures by region"]
    assert all(document.text.startswith(heading, start) for start, heading in document.sections)
    assert document.title == "Quarterly Report"  # no title property: the Title paragraph
    assert document.metadata == {"format": "docx", "authors": ["Jane Doe"], "date": "2024-03-05"}
    chunks = chunk_document(document, lambda text: len(text.split()), ChunkSettings(min_section_tokens=1))
    assert next(chunk for chunk in chunks if "North" in chunk.text).section == "Figures by region"


def test_docx_title_from_properties_else_file_name(tmp_path):
    document = convert(make_docx(tmp_path / "a.docx", title="Board Report 2024", author="A. Writer; B. Editor"), "a.docx")
    assert document.title == "Board Report 2024"
    assert document.metadata["authors"] == ["A. Writer", "B. Editor"]
    untitled = convert(make_docx(tmp_path / "board_minutes.docx", with_title_paragraph=False), "b.docx")
    assert untitled.title == "Summary"  # the first heading
    assert "authors" not in untitled.metadata and "date" not in untitled.metadata  # python-docx's placeholders

    import docx

    word = docx.Document()
    word.add_paragraph("Only a paragraph.")
    word.save(str(tmp_path / "plain_notes.docx"))
    assert convert(tmp_path / "plain_notes.docx", "p.docx").title == "plain notes"


def test_docx_bad_inputs_give_one_line_errors(tmp_path, capfd):
    with zipfile.ZipFile(tmp_path / "photos.docx", "w") as archive:
        archive.writestr("holiday.txt", "not a Word document")
    (tmp_path / "random.docx").write_bytes(random.Random(7).randbytes(2000))
    (tmp_path / "empty.docx").write_bytes(b"")
    (tmp_path / "old.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))  # an OLE2 header, as .doc files have
    with zipfile.ZipFile(tmp_path / "sheet.docx", "w") as archive:  # an .xlsx renamed
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                         '<Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
                         'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>')
        archive.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
                         'Target="xl/workbook.xml"/></Relationships>')
        archive.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook/>')
    expected = {
        "photos.docx": "not a readable Word document (a zip archive without a Word document in it)",
        "random.docx": "not a readable Word document (not a zip archive)",
        "old.docx": "not a readable Word document (an old .doc file: save it as .docx in Word)",
        "empty.docx": "not a readable Word document (the file is empty)",
        "sheet.docx": "not a readable Word document (it is an Excel workbook)",
    }
    for name, message in expected.items():
        assert _error(tmp_path / name, capfd) == message


# --- HTML ------------------------------------------------------------------------------------------

ARTICLE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Harbour news | Port Gazette</title>
<meta name="author" content="Jane Doe"><meta name="date" content="2024-02-03"></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li><li><a href="/about">About us</a></li></ul></nav>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience. <button>Accept all cookies</button></div>
<main><article>
<h1>The harbour reopens</h1>
<p>The harbour reopened on Monday after two years of dredging. Ships of the new class can now enter at low tide,
which the port authority says will double the cargo it handles by the end of the decade.</p>
<h2>What changed</h2>
<p>The channel is now eleven metres deep. The old breakwater was rebuilt with concrete blocks, and a second
berth was added on the eastern quay for container ships.</p>
<pre><code># depths in metres
depth = {"channel": 11, "berth_2": 9}  # **measured** in spring</code></pre>
<table><tr><th>Berth</th><th>Depth</th></tr><tr><td>East</td><td>11 m</td></tr><tr><td>West</td><td>9 m</td></tr></table>
<p>Fishermen say the new quay has made their <code>**early**</code> mornings easier.</p>
</article></main>
<footer><p>© 2024 Port Gazette Ltd. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>"""


def test_html_main_content_without_menus_banners_or_footer(tmp_path):
    (tmp_path / "harbour.html").write_text(ARTICLE, encoding="utf-8")
    document = convert(tmp_path / "harbour.html", "harbour.html")
    assert "The harbour reopened on Monday after two years of dredging." in document.text
    assert "The channel is now eleven metres deep." in document.text
    assert "East | 11 m" in document.text and "|---" not in document.text
    # Code keeps its characters, and its "# comment" is no heading.
    assert '# depths in metres depth = {"channel": 11, "berth_2": 9} # **measured** in spring' in document.text
    assert "their **early** mornings" in document.text
    for boilerplate in ("Home", "About us", "cookies", "Accept all", "©", "rights reserved", "Privacy"):
        assert boilerplate not in document.text
    assert [heading for _, heading in document.sections] == ["The harbour reopens", "What changed"]
    assert document.title == "The harbour reopens"
    assert document.metadata == {"format": "html", "authors": ["Jane Doe"], "date": "2024-02-03"}


@pytest.mark.parametrize("title_element, site", [
    ("4. More Control Flow Tools — Python 3.11.2 documentation", "Python 3.11.2 documentation"),
    ("4. More Control Flow Tools | Python docs", "Python docs"),
    ("4. More Control Flow Tools", None),  # no site named
])
def test_html_site_named_after_the_page_title_in_its_title_element(tmp_path, title_element, site):
    # trafilatura names such a page's site by the page's own title (the tutorial pages of the
    # Python documentation): every passage of it is about Python, though few say so (pyk01).
    page = (f"<html><head><title>{title_element}</title></head><body><h1>4. More Control Flow Tools</h1>"
            "<p>Annotations are stored in the __annotations__ attribute of the function as a dictionary and have "
            "no effect on any other part of the function.</p></body></html>")
    (tmp_path / "controlflow.html").write_text(page, encoding="utf-8")
    document = convert(tmp_path / "controlflow.html", "controlflow.html")
    assert document.title == "4. More Control Flow Tools"
    assert document.metadata.get("site") == site


def test_a_short_page_is_read(tmp_path):
    (tmp_path / "short.htm").write_text("<html><body><p>The ferry leaves at nine.</p></body></html>", encoding="utf-8")
    document = convert(tmp_path / "short.htm", "short.htm")
    assert document.text == "The ferry leaves at nine."
    assert document.title == "short"


def test_html_in_a_declared_legacy_charset(tmp_path):
    for charset in ("windows-1252", "iso-8859-1"):
        page = (f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}"><title>Le café</title></head>'
                "<body><article><p>Le café du port ouvre à sept heures. On y sert un très bon café crème aux marins "
                "qui rentrent de la pêche, et des croissants.</p></article></body></html>")
        path = tmp_path / f"{charset}.html"
        path.write_bytes(page.encode("cp1252"))
        document = convert(path, path.name)
        assert "Le café du port ouvre à sept heures." in document.text, charset
        assert document.title == "Le café"


def test_xhtml_in_its_declared_encoding(tmp_path):
    page = ('<?xml version="1.0" encoding="iso-8859-15"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>Prix</title></head>'
            "<body><p>Le café coûte 3 € aujourd'hui.</p></body></html>")
    (tmp_path / "prix.xhtml.html").write_bytes(page.encode("iso-8859-15"))
    assert convert(tmp_path / "prix.xhtml.html", "prix.html").text == "Le café coûte 3 € aujourd'hui."


def test_html_bad_inputs_give_one_line_errors(tmp_path, capfd):
    menu = ('<html><head><title>Menu</title></head><body><nav><ul><li><a href="/">Home</a></li>'
            '<li><a href="/products">Products and services</a></li><li><a href="/contact">Contact us</a></li></ul></nav>'
            '<footer><a href="/privacy">Privacy</a> <a href="/terms">Terms</a></footer></body></html>')
    links = '<html><body><div><a href="/a">Alpha</a> <a href="/b">Beta</a></div><ul><li><a href="/c">Gamma rays</a></li></ul></body></html>'
    for name, page in {"menu.html": menu, "links.html": links}.items():
        (tmp_path / name).write_text(page, encoding="utf-8")
        assert _error(tmp_path / name, capfd) == "no main content (the page is only navigation)", name
    (tmp_path / "empty.html").write_bytes(b"")
    assert _error(tmp_path / "empty.html", capfd) == "no text in the HTML page (the file is empty)"
    (tmp_path / "blank.html").write_text("<html><head><title>Blank</title></head><body> </body></html>", encoding="utf-8")
    assert _error(tmp_path / "blank.html", capfd) == "no text in the HTML page"
    (tmp_path / "noise.html").write_bytes(random.Random(7).randbytes(4000))
    assert _error(tmp_path / "noise.html", capfd) == "not an HTML page (binary data: is it another kind of file renamed?)"
    make_pdf(tmp_path / "report.html", [["A PDF saved under the wrong name."]])
    assert _error(tmp_path / "report.html", capfd) == "not an HTML page (it is a PDF renamed)"


def test_blocks_the_extraction_dropped_from_the_main_element_are_put_back_in_place():
    import lxml.html

    from rag.converters._main_content import recover_main_content
    from rag.converters.html import _escape
    from rag.converters.markdown import clean_text

    page = lxml.html.document_fromstring(
        "<html><body><nav><p>Home and everything else in the menu</p></nav><div role='main'>"
        "<h1>Release notes</h1><p>The <em>new</em> parser is faster.</p>"
        "<section><h3>PEP 999 is on hold</h3><p>It was planned for 3.10 and is <a href='#'>on hold</a>.</p></section>"
        "<div class='line-block'><div class='line'>Q: More memory?</div><div class='line'>A: At most 20% more.</div></div>"
        "<p>The end of the page.</p><pre>code_is_left_alone()</pre></div></body></html>")
    extracted = "# Release notes\n\nThe *new* parser\nis faster.\n\nThe end of the page.\n"
    recovered = recover_main_content(extracted, page, _escape)
    text, _, sections = clean_text(recovered)
    assert text.split("\n\n") == ["Release notes", "The new parser is faster.", "PEP 999 is on hold",
                                  "It was planned for 3.10 and is on hold.", "Q: More memory?", "A: At most 20% more.",
                                  "The end of the page."]
    assert [heading for _, heading in sections] == ["Release notes", "PEP 999 is on hold"]
    # Nothing is added where nothing was dropped, nor on a page that does not mark its main content.
    assert recover_main_content(recovered, page, _escape) == recovered
    unmarked = lxml.html.document_fromstring("<html><body><p>Menu text that trafilatura left out.</p><p>Kept.</p></body></html>")
    assert recover_main_content("Kept.\n", unmarked, _escape) == "Kept.\n"


def test_a_dropped_term_is_not_taken_for_the_start_of_another_line():
    import lxml.html

    from rag.converters._main_content import recover_main_content
    from rag.converters.html import _escape

    # "datetime.MAXYEAR" has the letters that begin "datetime(MAXYEAR, 12, ...)" further down: the
    # dropped constant and its description belong under "Constants", not inside the later line.
    long = "Each attribute below is read-only and is shared by every instance of the class. " * 8
    page = lxml.html.document_fromstring(
        "<html><body><div role='main'><h2>Constants</h2><p>The module exports these constants:</p>"
        "<dl><dt>datetime.MAXYEAR</dt><dd><p>The largest year number allowed. MAXYEAR is 9999.</p></dd></dl>"
        f"<h2>Attributes</h2><p>{long}</p><p>datetime.max</p><p>The latest time,</p><p>datetime(MAXYEAR, 12, 31)</p>"
        "</div></body></html>")
    extracted = (f"## Constants\n\nThe module exports these constants:\n\n## Attributes\n\n{long}\n\n- datetime.max\n\n"
                 "- The latest time,\n\ndatetime(MAXYEAR, 12, 31)\n")
    recovered = recover_main_content(extracted, page, _escape)
    assert recovered.index("MAXYEAR is 9999") < recovered.index("## Attributes")
    assert recovered.endswith("datetime(MAXYEAR, 12, 31)")


def test_a_description_term_heads_its_description_when_that_is_long_enough(tmp_path):
    long = ("Return a writer object that turns the rows it is given into delimited strings; the value None is written "
            "as the empty string.")
    page = (f"<html><head><title>csv</title></head><body><main><h1>csv</h1><p>Reading and writing CSV files, with a "
            f"few functions that read and write rows.</p><dl><dt>csv.writer(csvfile)</dt><dd><p>{long}</p></dd>"
            f"<dt>Release:</dt><dd>{long}</dd><dt>Version</dt><dd>3.11</dd><dt>.</dt><dd>{long}</dd></dl>"
            "<p>A paragraph after a blank line.</p></main></body></html>")
    (tmp_path / "csv.html").write_text(page, encoding="utf-8")
    document = convert(tmp_path / "csv.html", "csv.html")
    assert [heading for _, heading in document.sections] == ["csv", "csv.writer(csvfile)"]
    writer = document.text.index("csv.writer(csvfile)")
    assert document.text.index("the value None is written as the empty string") > writer
    assert "Version" in document.text and "Release:" in document.text  # kept, as text
    assert "#" not in document.text  # a term of punctuation alone heads nothing, nor marks a blank line


@pytest.mark.skipif(not (PYTHON_DOCS / "whatsnew/3.11.html").exists(), reason="Debian's python3.11-doc is not installed")
def test_a_real_page_keeps_the_sections_trafilatura_dropped():
    document = convert(PYTHON_DOCS / "whatsnew/3.11.html", "3.11.html")
    sections = dict((heading, start) for start, heading in document.sections)
    on_hold = document.text.index("that was originally planned for release in Python 3.10 has been put on hold indefinitely")
    assert max(s for s in sections.values() if s <= on_hold) == sections["PEP 563 may not be the future"]
    memory = document.text.index("We don’t expect memory use to exceed 20% more than 3.10.")
    assert max(s for s in sections.values() if s <= memory) == sections["FAQ"]


@pytest.mark.skipif(not (PYTHON_DOCS / "library/json.html").exists(), reason="Debian's python3.11-doc is not installed")
def test_a_real_documentation_page_keeps_its_headings_and_drops_the_sidebar():
    document = convert(PYTHON_DOCS / "library/json.html", "json.html")
    headings = [heading for _, heading in document.sections]
    assert headings[:2] == ["json — JSON encoder and decoder", "Basic Usage"]
    assert {"Encoders and Decoders", "Command Line Interface"} <= set(headings)
    # Each function's description is headed by its signature (a description term, see below).
    assert any(heading.startswith("json.dumps(obj") for heading in headings)
    assert "Be cautious when parsing JSON data from untrusted sources." in document.text
    assert ">>> import json >>> json.dumps(['foo', {'bar': ('baz', None, 1.0, 2)}])" in document.text
    for boilerplate in ("Previous topic", "Next topic", "This Page", "Report a Bug", "Show Source", "Copyright", "Last updated", "¶"):
        assert boilerplate not in document.text
    assert document.title == "json — JSON encoder and decoder"


# --- text files and the registry -------------------------------------------------------------------


def test_text_files_in_legacy_encodings(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("Le café est fermé le lundi et le mardi, mais la crêperie reste ouverte.\n".encode("latin-1"))
    assert convert(tmp_path / "latin1.txt", "latin1.txt").text == "Le café est fermé le lundi et le mardi, mais la crêperie reste ouverte."
    (tmp_path / "utf16.txt").write_bytes("Notes\r\nThe café opens at nine.\r\n".encode("utf-16"))  # with a byte order mark
    document = convert(tmp_path / "utf16.txt", "utf16.txt")
    assert document.text == "Notes The café opens at nine."
    start = document.text.index("café")
    original = (tmp_path / "utf16.txt").read_bytes().decode("utf-16")
    assert original[slice(*document.original_span(start, start + 4))] == "café"


def test_every_format_has_a_converter_and_others_are_named_in_the_error():
    assert {".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt"} <= set(converters())
    assert {converters()[s].format for s in (".pdf", ".docx", ".html", ".htm")} == {"pdf", "docx", "html"}
    with pytest.raises(DocumentError) as caught:
        converter_for(Path("budget.xlsx"))
    message = str(caught.value)
    assert "'.xlsx'" in message
    for suffix in (".docx", ".htm", ".html", ".md", ".pdf", ".txt"):
        assert suffix in message


def test_finding_the_converters_imports_no_parsing_library():
    code = ("import sys\nfrom rag.converters.base import converters\nconverters()\n"
            "print(sorted(m for m in ('pypdf', 'docx', 'trafilatura', 'lxml', 'charset_normalizer') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_pdf_running_headers_and_page_numbers_are_left_out_of_the_clean_text(tmp_path):
    pages = [["Chapter 1: Ports 1", "The Gwadar port opened in", "2007 with Chinese funding.", "1"],
             ["Chapter 1: Ports 2", "It handles cargo ships bound", "for Central Asia.", "}", "2"],
             ["Chapter 2: Trade 3", "Trade grew in 2019. Ships", "came from Oman.", "}", "3"],
             ["Chapter 2: Trade 4", "Dredging deepened the channel.", "4"]]
    document = convert(make_pdf(tmp_path / "report.pdf", pages), "report.pdf")
    assert "Chapter" not in document.text and not any(line.strip().isdigit() for line in document.text.splitlines())
    assert "The Gwadar port opened in 2007 with Chinese funding." in document.text
    assert "Ships came from Oman." in document.text and "}" in document.text  # a brace is content, however often
    start = document.text.index("Ships came")  # spans still map to the page text
    page, page_start, page_end = document.page_span(*document.original_span(start, start + len("Ships came")))
    assert page == 3 and page_texts(tmp_path / "report.pdf")[2][page_start:page_end].split() == ["Ships", "came"]
