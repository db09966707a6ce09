"""HTML: a `.html`/`.htm` file -> a `Document`, by trafilatura (Apache-2.0).

trafilatura keeps a page's main content (no menus, sidebars, footers or cookie banners) and writes
it as Markdown; the original of an HTML page is that Markdown, tidied here for the common cleaning:
- code blocks are indented instead of fenced, and their `*`, `_` and `\\` escaped, so a "# comment"
  in code is not taken for a heading and `**kwargs` keeps its stars;
- a table row is one line, its cells joined by " | " (as for DOCX), without the |---| rule;
- Sphinx's "¶" permalinks, inline-code backticks and empty list bullets are dropped;
- blocks of the page's marked main content that trafilatura dropped are put back
  (`_main_content.py`), and description terms head their descriptions (`_description_terms.py`).

A page whose only text is links (a menu, a table of contents) has no content to answer from, and
is reported as such rather than indexed as a list of link labels.
"""

from __future__ import annotations

import codecs
import copy
import re
from pathlib import Path

from ..errors import DocumentError
from ..schema import Document
from ._description_terms import terms_as_headings
from ._main_content import recover_main_content
from .base import document_from_text, title_from_file_name

_META_CHARSET = re.compile(rb"""<(?:meta[^>]+charset|\?xml[^>]+encoding)\s*=\s*["']?\s*([-\w:.]+)""", re.I)
# Elements that are never a page's content, for the fallback extraction and the navigation test.
_NOT_CONTENT = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "menu", "button")
_OTHER_FORMATS = ((b"%PDF-", "a PDF"), (b"PK\x03\x04", "a zip archive (a .docx?)"), (b"\xd0\xcf\x11\xe0", "an old Office file"))
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")  # in binary data, not in text
_PERMALINKS = "//a[contains(concat(' ', normalize-space(@class), ' '), ' headerlink ')]"
_INLINE_FENCE = re.compile(r"(?<=\S) ?```\n(.*?)\n```", re.S)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


class HtmlConverter:
    format = "html"
    suffixes = (".html", ".htm")

    def convert(self, path: Path, source: str) -> Document:
        import lxml.html
        import trafilatura

        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DocumentError(f"cannot read the file: {exc.strerror}") from None
        for magic, kind in _OTHER_FORMATS:
            if data.startswith(magic):
                raise DocumentError(f"not an HTML page (it is {kind} renamed)")
        page = decode_html(data)
        if not page.strip():
            raise DocumentError("no text in the HTML page (the file is empty)")
        sample = page[:10000]
        if "\x00" in sample or len(_CONTROL.findall(sample)) > len(sample) / 100:
            raise DocumentError("not an HTML page (binary data: is it another kind of file renamed?)")
        try:
            tree = lxml.html.document_fromstring(page.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))
        except Exception as exc:  # lxml refuses a document with nothing in it
            raise DocumentError(f"not a readable HTML page ({exc})") from None

        info = trafilatura.extract_metadata(copy.deepcopy(tree))
        markdown = trafilatura.extract(page, output_format="markdown", include_tables=True, include_comments=False,
                                       include_images=False, favor_recall=True, prune_xpath=[_PERMALINKS]) or ""
        if markdown.strip():
            markdown = terms_as_headings(recover_main_content(markdown, tree, _escape), tree)
        if not markdown.strip():
            # trafilatura found no article (a short page, an odd layout): the body's text, less menus.
            markdown = "\n\n".join(_body_blocks(copy.deepcopy(tree)))
        if not markdown.strip() and not _link_labels(tree):
            raise DocumentError("no text in the HTML page")
        if not markdown.strip() or _only_links(markdown, tree):
            raise DocumentError("no main content (the page is only navigation)")

        title = _tidy_title(info.title or "") or _tidy_title(tree.findtext(".//title") or "")
        # trafilatura names a page without a site name by its own title; the <title> element then
        # often still ends with the site ("4. More Control Flow Tools — Python 3.11.2 documentation").
        site = _tidy_title(info.sitename or "")
        if not site or site == title:
            site = site_in_title(tree.findtext(".//title") or "", title)
        metadata = {
            "format": self.format,
            "authors": [name.strip() for name in (info.author or "").split(";") if name.strip()],
            "date": info.date,
            "site": site or None,
        }
        return document_from_text(tidy_markdown(markdown), source, title=title, metadata=metadata,
                                  fallback_title=title_from_file_name(path))


def decode_html(data: bytes) -> str:
    """The page's text: by its byte order mark, else its <meta charset> (or XHTML's <?xml encoding>),
    else UTF-8, else a guess.
    (trafilatura, given bytes, guesses and ignores the declared charset.)"""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(encoding, errors="replace")
    declared = _META_CHARSET.search(data[:8192])
    if declared:
        name = declared.group(1).decode("ascii", errors="ignore").lower()
        # Browsers read a page labelled Latin-1 or ASCII as Windows-1252 (the HTML standard says so).
        name = "cp1252" if name in ("iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii") else name
        try:
            return data.decode(codecs.lookup(name).name, errors="replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    return str(best) if best is not None else data.decode("cp1252", errors="replace")


def _body_blocks(tree) -> list[str]:
    """The text of the body's paragraphs, headings and list items, less what is never content."""
    for element in tree.xpath("|".join(f"//{tag}" for tag in _NOT_CONTENT)):
        element.drop_tree()
    blocks = []
    for element in tree.xpath("//body//*[self::p or self::h1 or self::h2 or self::h3 or self::h4 or self::li or self::pre "
                              "or self::td or self::th or self::blockquote or self::dd or self::dt]"):
        text = " ".join(element.text_content().split())
        if text and not any(parent.tag in ("p", "li", "td", "th", "blockquote", "dd", "dt") for parent in element.iterancestors()):
            level = int(element.tag[1]) if re.fullmatch(r"h\d", element.tag) else 0
            text = _escape(text)  # plain text, not Markdown
            blocks.append("#" * level + " " + text if level else text)
    if not blocks:  # text straight in <body> or in <div>s
        body = tree.find(".//body")
        text = " ".join((body.text_content() if body is not None else "").split())
        blocks = [text] if text else []
    return blocks


def _only_links(markdown: str, tree) -> bool:
    """Is every line of the extracted text the label of a link (or links) of the page?"""
    labels = sorted(_link_labels(tree), key=len, reverse=True)  # longest first: "About us" before "About"
    if not labels:
        return False
    exact = set(labels)
    for line in markdown.splitlines():
        text = _words(re.sub(r"^\s*([-*+]|\d+[.)]|#{1,6})\s+", "", line))
        if not text or text in exact:
            continue
        # A line of several links ("Home About Contact"): what is left once the labels are taken out.
        for label in labels:
            if label in text:
                text = text.replace(label, " ")
        if re.search(r"\w", text):
            return False
    return True


def _link_labels(tree) -> set[str]:
    return {_words(a.text_content()) for a in tree.iter("a")} - {""}


def _words(text: str) -> str:
    """`text` compared as words: no Markdown marks, case or runs of white space."""
    return " ".join(re.sub(r"[\\`|*_]", " ", text).split()).casefold()


def tidy_markdown(markdown: str) -> str:
    """trafilatura's Markdown, made ready for the common cleaning (see the module's docstring)."""
    # A <code> span that wraps in the page comes out fenced after a word ("equivalent to ```"):
    # it is part of the sentence, so it goes back into the line.
    markdown = _INLINE_FENCE.sub(lambda m: " `" + " ".join(m.group(1).split()) + "` ", markdown)
    lines: list[str] = []
    in_code = False
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
            lines.append("")  # a code block is a block of its own
            continue
        if in_code:
            lines.append("    " + _escape(line) if line.strip() else "")
            continue
        line = line.replace("¶", "").rstrip()
        if _TABLE_RULE.match(line):
            continue
        if line.lstrip().startswith("|"):  # a table row: its own block, cells joined by " | "
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            lines.extend([" | ".join(cells), ""])
            continue
        if re.fullmatch(r"\s*[-*+]\s*", line):  # the empty bullet of a definition list
            continue
        # Inline code loses its backticks; trafilatura leaves its `*` and `_` unescaped.
        lines.append(re.sub(r"`([^`\n]+)`", lambda m: _escape(m.group(1)), line))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def _escape(code: str) -> str:
    """Backslash the characters the cleaning would take for Markdown emphasis or escapes."""
    return re.sub(r"([\\*_])", r"\\\1", code)


def _tidy_title(title: str) -> str:
    return " ".join(title.replace("¶", "").split())


# How a <title> parts a page's own title from its site's name.
_TITLE_SEPARATORS = (" — ", " – ", " | ", " - ", " :: ", " · ")


def site_in_title(title_element: str, title: str) -> str:
    """The site named after the page's own title in its <title> element ("Python 3.11.2
    documentation" in "csv — CSV File Reading and Writing — Python 3.11.2 documentation"), else ""."""
    whole = _tidy_title(title_element)
    if not title or not whole.startswith(title):
        return ""
    rest = whole[len(title):]
    separator = next((sep for sep in _TITLE_SEPARATORS if rest.startswith(sep)), None)
    return rest[len(separator):].strip() if separator else ""


CONVERTER = HtmlConverter()
