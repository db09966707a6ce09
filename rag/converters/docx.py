"""Word: a `.docx` file -> a `Document`, by python-docx (MIT).

The original of a DOCX is the Markdown-like text extracted from it here: one block per paragraph
in body order, "# " headings from the Heading N and Title styles, "- " list items, and one line
per table row with its cells joined by " | ". The characters that the common cleaning reads as
Markdown (`*`, `_`, `\\`, a leading `#`) are escaped, so "5 * 3" or "__init__" survive the cleaning.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DocumentError
from ..schema import Document
from .base import document_from_text, title_from_file_name

_HEADING_STYLE = re.compile(r"^heading ([1-9])$", re.I)
# The author and creation time in python-docx's own template, which its users rarely replace.
_PYTHON_DOCX_TEMPLATE = ("python-docx", "2013-12-23T23:15:00+00:00")


class DocxConverter:
    format = "docx"
    suffixes = (".docx",)

    def convert(self, path: Path, source: str) -> Document:
        word = _open(path)
        try:
            blocks = [block for block in _blocks(word) if block]
        except Exception as exc:  # a damaged part that python-docx opened but cannot walk
            raise DocumentError(f"not a readable Word document ({_reason(exc)})") from None
        properties = word.core_properties
        created = properties.created
        author = properties.author or ""
        if (author, created and created.isoformat()) == _PYTHON_DOCX_TEMPLATE:
            author, created = "", None  # a file written by python-docx that never set them
        metadata = {
            "format": self.format,
            "authors": [name.strip() for name in author.split(";") if name.strip()],
            "date": created.date().isoformat() if created else None,
        }
        return document_from_text("\n\n".join(blocks), source, title=properties.title, metadata=metadata,
                                  fallback_title=title_from_file_name(path))


def _open(path: Path):
    import zipfile

    import docx

    try:
        if path.stat().st_size == 0:
            raise DocumentError("not a readable Word document (the file is empty)")
        if not zipfile.is_zipfile(path):
            with path.open("rb") as file:
                old_word = file.read(4) == b"\xd0\xcf\x11\xe0"  # the container of .doc files before 2007
            raise DocumentError("not a readable Word document (" + ("an old .doc file: save it as .docx in Word)"
                                                                    if old_word else "not a zip archive)"))
        return docx.Document(str(path))
    except DocumentError:
        raise
    except OSError as exc:
        raise DocumentError(f"cannot read the file: {exc.strerror}") from None
    except Exception as exc:  # python-docx raises KeyError, ValueError, its own errors, lxml's ...
        raise DocumentError(f"not a readable Word document ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    text = str(exc).strip().strip("'\"")
    if isinstance(exc, KeyError) or "[Content_Types].xml" in text:
        return "a zip archive without a Word document in it"
    if "is not a Word file" in text:
        kind = "an Excel workbook" if "spreadsheetml" in text else "a PowerPoint presentation" if "presentationml" in text else None
        return f"it is {kind}" if kind else "a zip archive of another kind of document"
    return (text.splitlines()[0] if text else type(exc).__name__)[:120]


def _blocks(word) -> list[str]:
    """The body's paragraphs and tables as Markdown-like blocks, in document order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    blocks: list[str] = []

    def walk(element) -> None:
        for child in element.iterchildren():
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "p":
                blocks.append(_paragraph(Paragraph(child, word)))
            elif tag == "tbl":
                blocks.extend(_rows(Table(child, word)))
            elif tag in ("sdt", "sdtContent", "customXml"):  # content controls: cover pages, tables of contents
                walk(child)

    walk(word.element.body)
    return blocks


def _paragraph(paragraph) -> str:
    text = _escape(" ".join(paragraph.text.split()))
    if not text:
        return ""
    level = _heading_level(paragraph.style)
    if level:
        return "#" * level + " " + text
    if _is_list_item(paragraph):
        return "- " + text
    return text


def _heading_level(style) -> int:
    """1-6 for a Title or Heading N paragraph, also through a style based on one; 0 otherwise."""
    for _ in range(5):  # a custom style "My Heading" based on "Heading 2" is a heading too
        if style is None:
            return 0
        name = style.name or ""
        if name.lower() == "title":
            return 1
        match = _HEADING_STYLE.match(name)
        if match:
            return min(int(match.group(1)), 6)
        style = style.base_style
    return 0


def _is_list_item(paragraph) -> bool:
    properties = paragraph._p.pPr
    if properties is not None and properties.numPr is not None:
        return True
    name = (paragraph.style.name or "") if paragraph.style is not None else ""
    return name.lower().startswith("list")


def _rows(table) -> list[str]:
    """One line per row, cells joined by " | "; a merged cell counts once."""
    rows = []
    for row in table.rows:
        cells, seen = [], []
        for cell in row.cells:
            if any(cell._tc is element for element in seen):  # python-docx repeats a merged cell
                continue
            seen.append(cell._tc)
            cells.append(_escape(" ".join(cell.text.split())))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _escape(text: str) -> str:
    """Backslash the characters the cleaning would take for Markdown, so they stay text."""
    text = re.sub(r"([\\*_])", r"\\\1", text)
    return "\\" + text if re.match(r"#{1,6}\s", text) else text


CONVERTER = DocxConverter()
