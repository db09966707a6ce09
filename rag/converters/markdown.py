"""Markdown: a `.md` file -> a `Document`, and the cleaning every format's text goes through.

Cleaning is done character by character with an offset map (`Document.offsets[i]` is the position
in the original file of clean character `i`), so any clean span can be turned back into the exact
span of the file that a citation points at and a UI highlights.

What cleaning does, and why:
- Markdown markup from the PDF conversion (`<sup>` tags, `**`, `*`, `#`, `\\$`) is removed or
  unescaped: it is noise for the embedder and the model, and `\\$73` must read as `$73`.
- Web boilerplate lines ("Stay tuned with ...", "Get it on Google Play", "Categories : ...") are
  dropped: they are not content and would only attract irrelevant queries.
- Lines inside a paragraph are joined with a space; paragraphs stay separated by a blank line.
- A sentence that the PDF conversion broke across a blank line ("possible communist" / "expansion.")
  is joined again: a paragraph that ends without closing punctuation continues into the next one
  when the next starts in lower case or the break sits in the middle of a long line of prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DocumentError
from ..schema import Document

# Lines that web pages carry around an article and that are never content.
BOILERPLATE_LINES = [
    re.compile(r"^stay tuned with\b", re.I),
    re.compile(r"^get it on (google play|the app store)\b", re.I),
    re.compile(r"^download (the|our) app\b", re.I),
    re.compile(r"^categories?\s*:", re.I),
    re.compile(r"^tags?\s*:", re.I),
    re.compile(r"^(share|follow us) on\b", re.I),
]

# Closing punctuation after which a paragraph is complete (possibly followed by quotes/brackets).
_COMPLETE_END = re.compile(r"[.!?:;]['\"”’)\]]*$")
# A paragraph line at least this long that stops mid-sentence was cut by a page break.
_LONG_PROSE_LINE = 60

_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+")
_LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s+")
_SUP_TAG = re.compile(r"<sup>(.*?)</sup>", re.I | re.S)
_ORDINAL = re.compile(r"^(st|nd|rd|th)$", re.I)
_OTHER_TAG = re.compile(r"</?(sub|b|i|em|strong|br)\s*/?>", re.I)
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!$&%|~<>])")
_EMPHASIS = re.compile(r"\*{1,3}|(?<![\w])_{1,2}(?=\w)|(?<=\w)_{1,2}(?![\w])")


@dataclass
class _Piece:
    """Clean text of one original line with the original offset of each character."""

    text: str
    offsets: list[int]


def _clean_inline(line: str, base: int) -> _Piece:
    """Strip inline markup from one line; keep an offset for every kept character."""
    keep = [True] * len(line)

    def drop(start: int, end: int) -> None:
        for i in range(start, end):
            keep[i] = False

    for match in _SUP_TAG.finditer(line):
        inner = match.group(1)
        # "6<sup>th</sup>" reads "6th"; a footnote or affiliation number is dropped.
        if _ORDINAL.match(inner.strip()):
            drop(match.start(), match.start(1))
            drop(match.end(1), match.end())
        else:
            drop(match.start(), match.end())
    for match in _OTHER_TAG.finditer(line):
        drop(match.start(), match.end())
    for match in _ESCAPED.finditer(line):
        if keep[match.start()]:
            drop(match.start(), match.start() + 1)  # drop the backslash, keep the character
    for match in _EMPHASIS.finditer(line):
        # A "*" that is a list bullet at the line start was handled by the caller.
        if all(keep[match.start():match.end()]) and not _is_escaped_char(line, match.start(), keep):
            drop(match.start(), match.end())
    text_chars: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(line):
        if not keep[i]:
            continue
        if ch in "\t\u00a0":
            ch = " "
        text_chars.append(ch)
        offsets.append(base + i)
    return _collapse_spaces(_Piece("".join(text_chars), offsets))


def _is_escaped_char(line: str, index: int, keep: list[bool]) -> bool:
    return index > 0 and line[index - 1] == "\\" and not keep[index - 1]


def _collapse_spaces(piece: _Piece) -> _Piece:
    """Collapse runs of spaces to one and trim both ends, keeping offsets aligned."""
    text, offsets = [], []
    for ch, off in zip(piece.text, piece.offsets):
        if ch == " " and (not text or text[-1] == " "):
            continue
        text.append(ch)
        offsets.append(off)
    while text and text[-1] == " ":
        text.pop()
        offsets.pop()
    # A space left before punctuation by a removed tag ("Shah <sup>1</sup>,") is dropped too.
    out_text, out_offsets = [], []
    for i, (ch, off) in enumerate(zip(text, offsets)):
        if ch == " " and i + 1 < len(text) and text[i + 1] in ",.;:" and i > 0:
            continue
        out_text.append(ch)
        out_offsets.append(off)
    return _Piece("".join(out_text), out_offsets)


@dataclass
class _Block:
    """A paragraph, heading or list item of the cleaned file."""

    kind: str  # "paragraph", "heading", "item"
    piece: _Piece
    last_line_length: int  # length of its last original line, to tell a cut sentence


def _blocks(raw: str) -> list[_Block]:
    blocks: list[_Block] = []
    current: _Block | None = None
    position = 0
    for line in raw.splitlines(keepends=True):
        start = position
        position += len(line)
        body = line.rstrip("\r\n")
        if start == 0 and body.startswith("\ufeff"):  # byte order mark of files saved by Windows editors
            body, start = body[1:], 1
        stripped = body.strip()
        if not stripped:
            current = None  # a blank line ends a paragraph
            continue
        if any(p.search(stripped) for p in BOILERPLATE_LINES):
            current = None
            continue
        heading = _HEADING.match(body)
        if heading:
            piece = _clean_inline(body[heading.end():], start + heading.end())
            piece = _strip_trailing(piece, "#")
            if piece.text:
                blocks.append(_Block("heading", piece, len(body)))
            current = None
            continue
        item = _LIST_ITEM.match(body)
        piece = _clean_inline(body, start)
        if not piece.text:
            continue
        if item or current is None or current.kind == "heading":
            current = _Block("item" if item else "paragraph", piece, len(body))
            blocks.append(current)
        else:  # a continuation line of the same paragraph: join with a space
            current.piece = _join(current.piece, piece, " ")
            current.last_line_length = len(body)
    return blocks


def _strip_trailing(piece: _Piece, chars: str) -> _Piece:
    text, offsets = piece.text, list(piece.offsets)
    while text and (text[-1] in chars or text[-1] == " "):
        text = text[:-1]
        offsets.pop()
    return _Piece(text, offsets)


def _join(left: _Piece, right: _Piece, separator: str) -> _Piece:
    """Concatenate two pieces; separator characters map to the line break after `left`."""
    sep_offsets = [_gap(left, right)] * len(separator)
    return _Piece(left.text + separator + right.text, left.offsets + sep_offsets + right.offsets)


def _gap(left: _Piece, right: _Piece) -> int:
    """Original offset for text inserted between two pieces: just after `left`'s last character.

    Never the offset of a kept character (a line break always lies between the two), so that the
    clean index of an original position is `bisect_left(offsets, position)`, which passages and
    citations rely on to map a chunk's span back into the clean text.
    """
    return left.offsets[-1] + 1 if left.offsets else (right.offsets[0] if right.offsets else 0)


def _continues(previous: _Block, following: _Block) -> bool:
    """Was `following` cut off from `previous` by a page break in the middle of a sentence?"""
    if previous.kind != "paragraph" or following.kind != "paragraph":
        return False
    if _COMPLETE_END.search(previous.piece.text):
        return False
    starts_lower = following.piece.text[:1].islower()
    return starts_lower or previous.last_line_length >= _LONG_PROSE_LINE


def clean_text(raw: str) -> tuple[str, list[int], list[tuple[int, str]]]:
    """Clean a whole file (or any fragment of one).

    Returns the clean text, the original offset of each clean character, and the sections as
    (clean start, heading). Blocks are separated by a blank line, except cut sentences (a space).
    """
    pieces: list[_Piece] = []
    sections: list[tuple[int, str]] = []
    previous: _Block | None = None
    text_length = 0
    for block in _blocks(raw):
        if previous is not None and _continues(previous, block):
            pieces.append(_Piece(" ", [_gap(previous.piece, block.piece)]))
            text_length += 1
        elif pieces:
            pieces.append(_Piece("\n\n", [_gap(pieces[-1], block.piece)] * 2))
            text_length += 2
        if block.kind == "heading":
            sections.append((text_length, block.piece.text.rstrip(":").strip()))
        pieces.append(block.piece)
        text_length += len(block.piece.text)
        previous = block
    text = "".join(p.text for p in pieces)
    offsets = [o for p in pieces for o in p.offsets]
    return text, offsets, sections


def clean_fragment(raw: str) -> str:
    """The clean text of a piece of a source file, as the chunker sees it (used by evaluation)."""
    return clean_text(raw)[0]


def read_text_file(path: Path) -> str:
    """The file's text, decoded from UTF-8 or, failing that, the encoding its bytes point to
    (Latin-1, Windows-1252, UTF-16 ...): a user's old notes are not an error. Read as bytes, not
    with read_text: universal newlines would turn \r\n into \n and shift every offset."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read the file: {exc.strerror}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    # Western text is by far the most common non-UTF-8 case, and a short Latin-1 note also
    # decodes plausibly as Central European (cp1250: "naïve" -> "naďve"): when Windows-1252 is
    # among the encodings that read the bytes cleanly, it wins.
    if any(m.encoding in ("cp1252", "latin_1", "iso8859_15") for m in matches):
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    best = matches.best()
    if best is None or "\x00" in str(best):
        raise DocumentError("the file is not text in any encoding pakus recognises (is it binary?)")
    return str(best)


class MarkdownConverter:
    format = "markdown"
    suffixes = (".md", ".markdown")

    def convert(self, path: Path, source: str) -> Document:
        raw = read_text_file(path)
        text, offsets, sections = clean_text(raw)
        title = sections[0][1] if sections else path.stem.replace("-", " ").replace("_", " ")
        return Document(source=source, title=title, text=text, offsets=offsets, sections=sections, metadata={"format": self.format})


CONVERTER = MarkdownConverter()
