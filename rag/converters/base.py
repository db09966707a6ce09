"""Converters: a file -> a `Document` whose clean text still maps back to the original.

A converter is one module in this package that defines `CONVERTER`, an object with:
    format    short name recorded per document ("pdf", "html", ...)
    suffixes  the file name endings it reads, lower case, with the dot
    convert(path, source) -> Document

Adding a format is adding one module: `converters()` finds every module of the package. Heavy
parsing libraries are imported inside `convert`, so finding the converters costs nothing.

What "original" means per format (the span a citation gives):
- text and Markdown: the file's own characters;
- HTML and DOCX: the text extracted from the file (Markdown-like: "# " headings, blank lines
  between paragraphs), which `pakus` can show again; the file itself is markup or a zip;
- PDF: each page's extracted text; `Document.page_starts` says where each page begins, so a
  citation gives a page and a span within that page's text.

Every converter raises `DocumentError` with a one-line reason for a file it cannot read (corrupt,
encrypted, no text); the ingest step reports it and goes on with the other files.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from ..errors import DocumentError
from ..schema import Document


class Converter(Protocol):
    format: str
    suffixes: tuple[str, ...]

    def convert(self, path: Path, source: str) -> Document:
        """Read `path` into a Document whose `source` is `source`; DocumentError if it cannot."""


@lru_cache(maxsize=1)
def converters() -> dict[str, Converter]:
    """Every converter of this package, by file suffix."""
    by_suffix: dict[str, Converter] = {}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.startswith("_") or module.name == "base":
            continue
        converter = getattr(importlib.import_module(f"{__package__}.{module.name}"), "CONVERTER", None)
        if converter is not None:
            for suffix in converter.suffixes:
                by_suffix[suffix] = converter
    return by_suffix


def supported_suffixes() -> tuple[str, ...]:
    return tuple(sorted(converters()))


def converter_for(path: Path) -> Converter:
    converter = converters().get(path.suffix.lower())
    if converter is None:
        kind = f"{path.suffix!r} files" if path.suffix else "files without an extension"
        raise DocumentError(f"unsupported format: {kind} (pakus reads {', '.join(supported_suffixes())})")
    return converter


def convert(path: Path, source: str) -> Document:
    """The Document of one file, by the converter for its suffix; DocumentError if none reads it."""
    document = converter_for(path).convert(path, source)
    if not document.text.strip():
        raise DocumentError("no text in the file")
    return document


def document_from_text(raw: str, source: str, *, title: str | None, metadata: dict, page_starts: list[int] | None = None,
                       fallback_title: str = "") -> Document:
    """Clean Markdown-like `raw` text (headings as "# ", paragraphs separated by blank lines) into
    a Document mapping back to `raw`. The converters for extracted formats build such text and
    call this, so every format gets the same cleaning, sections and offset map."""
    from .markdown import clean_text

    text, offsets, sections = clean_text(raw)
    title = (title or "").strip() or (sections[0][1] if sections else "") or fallback_title
    return Document(source=source, title=title, text=text, offsets=offsets, sections=sections,
                    metadata={k: v for k, v in metadata.items() if v not in (None, "", [])}, page_starts=page_starts or [])


def title_from_file_name(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").strip() or path.name
