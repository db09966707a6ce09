"""Loading: cleaning facts on tiny documents, and the offset map checked on the real seeds."""

from __future__ import annotations

import bisect
from pathlib import Path

import pytest

from conftest import SEEDS, write_tiny_documents
from rag.chunking import ChunkSettings, chunk_document
from rag.errors import DocumentError
from rag.converters.markdown import clean_fragment, clean_text
from conftest import load_document, load_folder
from rag.ingest import read_overrides as read_provenance

ROOT = SEEDS.parent


@pytest.fixture
def paper(tiny_docs):
    return load_document(tiny_docs.seeds / "aid-review.md", tiny_docs.project_root,
                         read_provenance(tiny_docs.seeds)["aid-review.md"])


@pytest.fixture
def article(tiny_docs):
    return load_document(tiny_docs.seeds / "gwadar-port.txt", tiny_docs.project_root)


def raw_of(document, root: Path) -> str:
    return (root / document.source).read_bytes().decode("utf-8")


# --- cleaning --------------------------------------------------------------------------------------


def test_markup_is_removed_and_escaped_dollars_unescaped(paper):
    assert "<sup>" not in paper.text and "</sup>" not in paper.text
    assert "*" not in paper.text
    assert "\\" not in paper.text
    assert "$73 billion" in paper.text and "$1 billion a year" in paper.text
    assert "financial aid from the United States" in paper.text  # was **financial aid**


def test_footnote_numbers_are_dropped_but_ordinals_kept(paper):
    # "Ayesha Khan <sup>1</sup>, Bilal Ahmed<sup>2</sup>": no number, no space before the comma.
    assert "Ayesha Khan, Bilal Ahmed" in paper.text
    assert "Received: 6th October, 2021 Accepted: 15th October, 2021" in paper.text


def test_heading_lines_become_sections_without_their_markup(paper):
    headings = [heading for _, heading in paper.sections]
    assert headings == ["A REVIEW OF AID TO PAKISTAN", "ARTICLE INFO", "ABSTRACT", "INTRODUCTION", "Military training", "REFERENCES"]
    for start, heading in paper.sections:  # each section starts where its heading text is
        assert paper.text.startswith(heading, start)
        assert start == 0 or paper.text[start - 2:start] == "\n\n"
    assert "#" not in paper.text


def test_boilerplate_lines_are_dropped(article):
    for line in ("Stay tuned with", "Get it on Google Play", "Categories", "Opinion"):
        assert line not in article.text
    assert article.text.endswith("Dredging work deepened the harbour channel in 2021.")


def test_sentence_cut_by_a_page_break_is_joined(paper):
    assert "in the face of possible communist expansion. Pakistan was seen" in paper.text


def test_paragraphs_stay_apart_and_lines_of_one_paragraph_are_joined(tiny_docs):
    notes = load_document(tiny_docs.seeds / "cricket-notes.txt", tiny_docs.project_root)
    assert notes.text == ("Cricket notes\n\nThe national cricket team won the championship trophy in Lahore. "
                          "Fans celebrated the victory in the streets of the old city.")


def test_title_comes_from_provenance_then_first_heading_then_file_name(tiny_docs, paper):
    assert paper.title == "A Review of Aid to Pakistan"  # sources.json
    bare = load_document(tiny_docs.seeds / "aid-review.md", tiny_docs.project_root)
    assert bare.title == "A REVIEW OF AID TO PAKISTAN"  # first heading
    notes = load_document(tiny_docs.seeds / "cricket-notes.txt", tiny_docs.project_root)
    assert notes.title == "Cricket notes"  # a text file's short first line
    (tiny_docs.seeds / "long-first-line.txt").write_text("word " * 40 + "\n\nMore.\n", encoding="utf-8")
    assert load_document(tiny_docs.seeds / "long-first-line.txt", tiny_docs.project_root).title == "long first line"  # file name


def test_source_is_relative_to_the_project_root(paper):
    assert paper.source == "seeds/aid-review.md"


def test_offsets_map_every_clean_character_back_to_the_file(tiny_docs):
    for document in load_folder(tiny_docs.seeds, tiny_docs.project_root):
        raw = raw_of(document, tiny_docs.project_root)
        assert len(document.offsets) == len(document.text)
        for i, ch in enumerate(document.text):
            if not ch.isspace():
                assert raw[document.offsets[i]] == ch, (document.source, i)


def test_crlf_file_keeps_offsets_into_the_bytes_as_read(tiny_docs):
    notes = load_document(tiny_docs.seeds / "cricket-notes.txt", tiny_docs.project_root)
    raw = raw_of(notes, tiny_docs.project_root)
    assert "\r\n" in raw and "\r" not in notes.text
    start = notes.text.index("Fans celebrated")
    end = notes.text.index("old city.") + len("old city.")
    span_start, span_end = notes.original_span(start, end)
    assert raw[span_start:span_end] == "Fans celebrated the victory\r\nin the streets of the old city."
    assert clean_fragment(raw[span_start:span_end]) == notes.text[start:end]


def test_a_byte_order_mark_does_not_hide_the_first_heading(tmp_path):
    path = tmp_path / "bom.md"
    path.write_bytes("\ufeff# Title Here\r\n\r\nBody text.".encode("utf-8"))
    document = load_document(path, tmp_path)
    assert document.text == "Title Here\n\nBody text."
    assert document.sections == [(0, "Title Here")]
    assert document.title == "Title Here"


def test_inserted_separators_never_share_an_offset_with_a_kept_character(tiny_docs):
    """bisect_left(offsets, position) must find the clean character at `position`: passages and
    citations map a chunk's file span back into the clean text this way."""
    for document in load_folder(tiny_docs.seeds, tiny_docs.project_root):
        assert document.offsets == sorted(document.offsets)
        for i, ch in enumerate(document.text):
            if not ch.isspace():
                assert bisect.bisect_left(document.offsets, document.offsets[i]) == i, (document.source, i)


def test_original_span_of_an_empty_span_is_empty():
    text, offsets, _ = clean_text("Hello world.")
    from rag.schema import Document

    document = Document("x.txt", "x", text, offsets)
    assert document.original_span(3, 3) == (3, 3)
    assert document.original_span(len(text), len(text)) == (len(text), len(text))
    assert document.original_span(0, len(text)) == (0, len("Hello world."))


# --- errors ------------------------------------------------------------------------------------------


def test_a_latin1_file_is_decoded_not_refused(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Notes\n\nCafé au lait, naïve résumé, déjà vu à Genève.".encode("latin-1"))
    assert "Café au lait, naïve résumé" in load_document(path, tmp_path).text


def test_an_unsupported_suffix_is_a_document_error_naming_the_supported_ones():
    from rag.converters.base import converter_for

    with pytest.raises(DocumentError, match=r"unsupported format: '\.xlsx' files.*\.md.*\.txt"):
        converter_for(Path("budget.xlsx"))


def test_damaged_sources_json_is_a_document_error(tmp_path):
    write_tiny_documents(tmp_path)
    (tmp_path / "seeds" / "sources.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DocumentError, match="sources.json"):
        load_folder(tmp_path / "seeds", tmp_path)


def test_folder_loads_documents_in_name_order_with_their_provenance(tiny_docs):
    documents = load_folder(tiny_docs.seeds, tiny_docs.project_root)
    assert [d.source for d in documents] == ["seeds/aid-review.md", "seeds/cricket-notes.txt", "seeds/gwadar-port.txt"]
    assert documents[2].metadata["publisher"] == "24 News HD"
    assert documents[1].metadata == {"format": "text"}


# --- the real seeds ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_documents():
    return load_folder(SEEDS, ROOT)


def test_seed_offsets_round_trip(seed_documents):
    assert len(seed_documents) == 2
    for document in seed_documents:
        raw = raw_of(document, ROOT)
        assert len(document.offsets) == len(document.text)
        mismatches = [i for i, ch in enumerate(document.text) if not ch.isspace() and raw[document.offsets[i]] != ch]
        assert mismatches == [], document.source


def test_seed_cleaning_facts(seed_documents):
    article, paper = seed_documents
    assert article.source == "seeds/pak-us-ties-and-global-security.txt"
    for document in seed_documents:
        assert "<sup>" not in document.text and "**" not in document.text and "\\$" not in document.text
    assert "received \\$73" not in paper.text and "received $73 billion" in paper.text
    assert "possible communist expansion." in paper.text
    assert "Stay tuned with" not in article.text and "Google Play" not in article.text and "Categories" not in article.text
    assert ("CONCLUSION" in [h for _, h in paper.sections]) and ("REFERENCES" in [h for _, h in paper.sections])


def test_every_seed_chunk_is_the_clean_text_of_its_file_span(seed_documents):
    for document in seed_documents:
        raw = raw_of(document, ROOT)
        chunks = chunk_document(document, lambda text: len(text.split()), ChunkSettings())
        assert len(chunks) > 10
        for chunk in chunks:
            assert clean_fragment(raw[chunk.start:chunk.end]) == chunk.text, chunk.chunk_id
