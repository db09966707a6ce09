"""PDF: a `.pdf` file -> a `Document`, with pages, by pypdf (pure Python, BSD).

The original of a PDF is its pages' extracted texts laid end to end, joined by a blank line;
`page_starts` says where each page begins, so a citation names a page and a span within it.

That original goes through the common cleaning unchanged, and the few PDF-specific repairs are
then made on the clean text and its offset map, never on the original (which must stay the pages'
text): words split across a line end are joined again ("infor- mation" -> "information"),
ligature characters are spelled out ("ﬁ" -> "fi", or "ﬁnance" never matches "finance"), and the
headings named by the PDF's outline (bookmarks) are made blocks of their own and become sections.
A PDF without an outline has no sections: guessing headings from text alone does more harm than good.
Running headers and footers (a page's first or last line that recurs, numbers aside, on several
pages: "Chapter 1: Introduction and preliminaries 3", a bare page number) are left out of the clean
text: they interrupt the sentence that runs across the page break.
"""

from __future__ import annotations

import bisect
import logging
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import DocumentError
from ..schema import Document
from .base import document_from_text, title_from_file_name

PAGE_SEPARATOR = "\n\n"

# Titles that PDF producers write when the author gave none.
_MEANINGLESS_TITLE = re.compile(
    r"^(untitled.*|document\d*|title|no title|none|unknown|slide \d+)$"  # placeholders
    r"|^microsoft (word|powerpoint|excel) - "  # "Microsoft Word - report.doc"
    r"|\.(docx?|pdf|tex|dvi|indd|pptx?|rtf|odt|qxd|txt|html?)$",  # a file name
    re.I)
_QUOTES = str.maketrans("‘’“”", "''\"\"")  # a bookmark says "doesn't", the page "doesn’t"
_LIGATURES = {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
# A page's first or last line whose text, numbers aside, starts or ends this many pages is a
# running header or footer; two suffice for one that starts or ends with a number (its page
# number). In R's manuals each chapter's header ("Chapter 4: Ordered and unordered factors 18")
# recurs on 2-20 pages.
_RUNNING_MIN_PAGES = 3
_NUMBERED_RUNNING_MIN_PAGES = 2
# Section numbers that a heading's text carries and its bookmark often does not.
_SECTION_NUMBER = re.compile(r"(([A-Z]\.)?\d+(\.\d+)*\.?|[IVXLC]+\.|[A-Z]\.)[ \t]+")  # "2.1", "B.3", "IV.", "A."


class PdfConverter:
    format = "pdf"
    suffixes = (".pdf",)

    def convert(self, path: Path, source: str) -> Document:
        with _quiet_pypdf():
            reader = _open(path)
            pages = [_page_text(page) for page in reader.pages]
            if not any(text.strip() for text in pages):
                raise DocumentError("no text layer (scanned?); pakus does not do OCR")
            outline = _outline(reader)
            info = _info(reader)

        original = PAGE_SEPARATOR.join(pages)
        page_starts, position = [], 0
        for text in pages:
            page_starts.append(position)
            position += len(text) + len(PAGE_SEPARATOR)

        metadata = {"format": self.format, "pages": len(pages), "authors": info["authors"], "date": info["date"]}
        document = document_from_text(original, source, title=None, metadata=metadata, page_starts=page_starts)
        text, offsets = _repair_words(document.text, document.offsets, original)
        text, offsets = _drop_running_lines(text, offsets, original, page_starts)
        text, offsets, sections = _mark_headings(text, offsets, original, page_starts, outline)
        document.text, document.offsets, document.sections = text, offsets, sections
        # A title page's first line names the document better than its first heading ("Introduction").
        document.title = info["title"] or _first_short_line(pages) or (sections[0][1] if sections else "") \
            or title_from_file_name(path)
        return document


# --- reading -------------------------------------------------------------------------------------


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """pypdf logs a warning on stderr for every oddity of a damaged file it can still read; pakus
    reports one line per file that it cannot read, and nothing for one that it can."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _open(path: Path):
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        with path.open("rb") as file:
            head = file.read(1024)
        if not head:
            raise DocumentError("not a readable PDF (the file is empty)")
        if b"%PDF-" not in head:  # pypdf's own error for this says "Stream has ended unexpectedly"
            raise DocumentError("not a readable PDF (no PDF header: the file is something else)")
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            # Many PDFs are encrypted only to restrict printing or copying, and open with an empty password.
            raise DocumentError("encrypted PDF; pakus cannot read password-protected files")
        if len(reader.pages) == 0:
            raise DocumentError("the PDF has no pages")
    except DocumentError:
        raise
    except FileNotDecryptedError:
        raise DocumentError("encrypted PDF; pakus cannot read password-protected files") from None
    except DependencyError as exc:  # AES encryption needs the `cryptography` package
        raise DocumentError(f"encrypted PDF that pakus cannot decrypt ({_reason(exc)})") from None
    except OSError as exc:
        raise DocumentError(f"cannot read the file: {exc.strerror}") from None
    except Exception as exc:  # pypdf raises many kinds of errors on a damaged file
        raise DocumentError(f"not a readable PDF (damaged or cut short: {_reason(exc)})") from None
    return reader


def _reason(exc: Exception) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message[:120]


def _page_text(page) -> str:
    # One unreadable page (a broken content stream) costs that page, not the whole document.
    try:
        return page.extract_text() or ""
    except Exception:
        return ""


def _outline(reader) -> list[tuple[int, str]]:
    """The bookmarks as (page index, title), in document order; empty if none or unreadable."""
    items: list[tuple[int, str]] = []

    def walk(nodes) -> None:
        for node in nodes:
            if isinstance(node, list):
                walk(node)
                continue
            try:
                page = reader.get_destination_page_number(node)
                title = " ".join(str(node.title or "").split())
            except Exception:
                continue
            if page is not None and page >= 0 and title:
                items.append((page, title))

    try:
        walk(reader.outline)
    except Exception:
        return []
    return items


def _info(reader) -> dict:
    """Title, authors and date from the document information dictionary, where meaningful."""
    try:
        info = reader.metadata or {}
    except Exception:
        info = {}

    def field(name: str) -> str:
        try:
            value = info.get(name)
            value = value.get_object() if hasattr(value, "get_object") else value  # an indirect reference
            return " ".join(str(value or "").split())
        except Exception:
            return ""

    title = field("/Title")
    if _MEANINGLESS_TITLE.search(title) or not re.search(r"[^\W\d_]", title):
        title = ""
    authors = [name.strip() for name in re.split(r";|\n", field("/Author")) if name.strip()]
    date = re.match(r"(?:D:)?(\d{4})(\d{2})?(\d{2})?", field("/CreationDate"))
    iso = ""
    if date and date.group(3):
        iso = f"{date.group(1)}-{date.group(2)}-{date.group(3)}"
    elif date and date.group(1) != "0000":
        iso = date.group(1)
    return {"title": title, "authors": authors, "date": iso}


def _first_short_line(pages: list[str]) -> str:
    """The first line with words on the first page with text, if short enough to be a title."""
    for line in next((text for text in pages if text.strip()), "").splitlines():
        line = " ".join(line.split())
        if re.search(r"[^\W\d_]{2}", line):  # not a page number or a date
            return line if len(line) <= 120 else ""
    return ""


# --- repairs on the clean text ---------------------------------------------------------------------


def _apply(text: str, offsets: list[int], edits: list[tuple[int, int, str, int]]):
    """Replace clean spans [start, end) by new text whose characters all map to one original
    offset; edits must not overlap. Returns the new text, offsets and a map of old to new index."""
    parts, new_offsets, shifts, position, delta = [], [], [], 0, 0
    for start, end, replacement, offset in sorted(edits):
        parts.append(text[position:start])
        new_offsets.extend(offsets[position:start])
        parts.append(replacement)
        new_offsets.extend([offset] * len(replacement))
        delta += len(replacement) - (end - start)
        shifts.append((end, delta))
        position = end
    parts.append(text[position:])
    new_offsets.extend(offsets[position:])
    ends = [end for end, _ in shifts]

    def new_index(old: int) -> int:
        i = bisect.bisect_right(ends, old)
        return old + (shifts[i - 1][1] if i else 0)

    return "".join(parts), new_offsets, new_index


def _repair_words(text: str, offsets: list[int], original: str) -> tuple[str, list[int]]:
    """Join words hyphenated at a line end and spell out ligatures."""
    edits = []
    for match in re.finditer(r"(?<=[^\W\d_])[-\u00ad] (?=[a-z])", text):
        hyphen = match.start()
        # Only where the PDF broke the line right after the hyphen; "well- known" within a line stays.
        between = original[offsets[hyphen] + 1:offsets[hyphen + 2]]
        if "\n" in between and not between.strip():
            edits.append((hyphen, hyphen + 2, "", 0))
    for match in re.finditer("[" + "".join(_LIGATURES) + "]", text):
        edits.append((match.start(), match.end(), _LIGATURES[match.group()], offsets[match.start()]))
    text, offsets, _ = _apply(text, offsets, edits)
    return text, offsets


def _edge_lines(original: str, page_starts: list[int]) -> list[tuple[int, int]]:
    """Spans in `original` of each page's first and last non-blank line."""
    spans: set[tuple[int, int]] = set()
    for i, start in enumerate(page_starts):
        end = page_starts[i + 1] - len(PAGE_SEPARATOR) if i + 1 < len(page_starts) else len(original)
        lines = [m for m in re.finditer(r"[^\n]+", original[start:end]) if m.group().strip()]
        spans.update((start + m.start(), start + m.end()) for m in lines[:1] + lines[-1:])
    return sorted(spans)


def _drop_running_lines(text: str, offsets: list[int], original: str, page_starts: list[int]) -> tuple[str, list[int]]:
    """Leave running headers and footers out of the clean text (see the module's docstring)."""
    # A line's shape: its words, numbers written "#" (a page number changes from page to page).
    shapes = {span: re.sub(r"\d+", "#", " ".join(original[span[0]:span[1]].split())) for span in _edge_lines(original, page_starts)}
    counts = Counter(shapes.values())
    edits = []
    for span, shape in shapes.items():
        numbered = re.search(r"^#|#$", shape)
        if counts[shape] < (_NUMBERED_RUNNING_MIN_PAGES if numbered else _RUNNING_MIN_PAGES) \
                or not re.search(r"[^\W_]", original[span[0]:span[1]]):  # a code block's "}" is content
            continue
        head, tail = bisect.bisect_left(offsets, span[0]), bisect.bisect_left(offsets, span[1])
        if " ".join(text[head:tail].split()) != " ".join(original[span[0]:span[1]].split()):
            continue  # the cleaning changed the line: not cut blind
        while tail < len(text) and text[tail] == " ":
            tail += 1  # "built <header> into" -> "built into"
        edits.append((head, tail, "", 0))
    text, offsets, _ = _apply(text, offsets, edits)
    return text, offsets


def _mark_headings(text: str, offsets: list[int], original: str, page_starts: list[int],
                   outline: list[tuple[int, str]]) -> tuple[str, list[int], list[tuple[int, str]]]:
    """Make each bookmarked heading found on its page a block of its own (the chunker starts a
    section at a block), and return the sections as (clean start, heading). A bookmark whose
    title is not found on its page gives no section (its page's top is no block to start one at)."""
    edits: dict[int, tuple[int, int, str, int]] = {}  # by start
    starts: dict[int, str] = {}  # clean start -> heading, before the edits
    searched_to: dict[int, int] = {}  # per page: where the next heading is looked for
    for page, title in outline:
        if page >= len(page_starts):
            continue
        page_start = page_starts[page]
        page_end = page_starts[page + 1] - len(PAGE_SEPARATOR) if page + 1 < len(page_starts) else len(original)
        found = _find_heading(original, searched_to.get(page, page_start), page_end, title)
        if found is None:
            continue
        searched_to[page] = found[2]
        head, name, tail = (bisect.bisect_left(offsets, position) for position in found)
        before, after = _break_at(text, offsets, head - 1), _break_at(text, offsets, tail)
        if before is False or after is False or head in starts:
            continue  # the heading cannot be cut out as a block (never seen; kept safe)
        edits.update((edit[0], edit) for edit in (before, after) if edit)  # one break between two headings
        starts[head] = text[name:tail]
    text, offsets, new_index = _apply(text, offsets, list(edits.values()))
    sections = sorted((new_index(start), heading) for start, heading in starts.items())
    return text, offsets, sections


def _find_heading(original: str, start: int, end: int, title: str) -> tuple[int, int, int] | None:
    """Where `title` is in original[start:end], ignoring case and runs of white space (a title may
    wrap), as (start of its line, start of the title, end): at the start of a line, with a section
    number the bookmark may lack; else ending a line that starts with a few other words ("12
    Appendix A <title>": a page number and a label, which stay in the heading's block but not in
    its name). None if neither is there: a title mentioned in the prose is no heading."""
    words = [word.translate(_QUOTES).casefold() for word in title.split()]
    lines = [(start + m.start(), start + m.end()) for m in re.finditer(r"(?m)^[ \t]*(.*)$", original[start:end])]
    for head, line_end in lines:
        head += len(original[head:line_end]) - len(original[head:line_end].lstrip())
        number = _SECTION_NUMBER.match(original, head, end)
        skip = number.end() if number and not title.casefold().startswith(number.group(1).casefold()) else head
        tail = _match_words(original, skip, end, words)
        if tail is not None and (tail >= end or not original[tail].isalnum()):
            return head, head, tail
    for head, line_end in lines:
        for word in list(re.finditer(r"\S+", original[head:min(line_end, head + 24)]))[1:]:
            tail = _match_words(original, head + word.start(), end, words)
            if tail is not None and not original[tail:line_end].strip():
                return head, head + word.start(), tail
    return None


def _match_words(original: str, position: int, end: int, words: list[str]) -> int | None:
    """Where `words` end if original[position:end] begins with them (any white space between them)."""
    for index, word in enumerate(words):
        while index and position < end and original[position].isspace():
            position += 1
        if position + len(word) > end or original[position:position + len(word)].translate(_QUOTES).casefold() != word:
            return None
        position += len(word)
    return position


def _break_at(text: str, offsets: list[int], index: int):
    """The edit that puts a paragraph break at clean `index` (a space: a line end the cleaning
    joined, or one between words), None if a break is there already, False if none can be put."""
    if index < 0 or index >= len(text) or text[index] == "\n":
        return None
    if text[index] == " ":
        return index, index + 1, PAGE_SEPARATOR, offsets[index]
    return False


CONVERTER = PdfConverter()
