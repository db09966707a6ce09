"""Put back what trafilatura dropped from the part of a page that the page marks as its content.

trafilatura decides by heuristics (link density, length, position) what is boilerplate, and it
drops some blocks of a page's own content with it. Measured on 25 pages of the Python 3.11
documentation, whose content sits in an element with role="main", 66 of its 3,042 paragraphs
were missing from the indexed text (`benchmarks/html_coverage.py`; 4 with this module), among them
a whole section of the "What's New" page (heading and paragraph) and an FAQ answer written as
<div class="line"> elements; two of the 22 Python-docs questions asked about such text.

A page that marks its main content (HTML's <main>, or ARIA's role="main") has said what is not
boilerplate. Inside that element, every block of text (a paragraph, heading, list item, definition
or <div> with text of its own) that is nowhere in the extracted Markdown is put back, as plain
text, after the line holding the last block before it that is there. Tables and code are left to
trafilatura (it keeps them; a flattened copy would not help). A page that marks nothing is left as
trafilatura extracted it: there, what it drops is mostly what it should.
"""

from __future__ import annotations

import bisect
import re

# Blocks whose own text is put back. Any element that is not inline text is a block boundary.
_BLOCKS = {"p", "div", "li", "dd", "dt", "blockquote", "figcaption", "h1", "h2", "h3", "h4", "h5", "h6"}
_INLINE = {"a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "i", "kbd", "mark", "q", "s", "samp",
           "small", "span", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr", "br", "del", "ins"}
# Blocks whose text is never taken (trafilatura keeps tables and code; lists of links are menus).
_SKIPPED = {"table", "pre", "nav", "script", "style", "noscript", "template", "form", "button", "aside", "header", "footer"}
_MAIN = "//main | //*[@role='main']"
# Compared by letters and digits alone: trafilatura's Markdown spaces, marks and escapes differ
# from the page's text ("*very-high-level language* ,", "\\_\\_init\\_\\_").
_NOT_LETTERS = re.compile(r"[\W_]+")
_LIST_NUMBER = re.compile(r"\s*(?:\d+[.)]\s+)?")
# A block with fewer letters than this is a name or a label, found in many places by chance.
_SHORT_BLOCK_LETTERS = 40
_NEAR_LETTERS = 400  # about a paragraph


def recover_main_content(markdown: str, tree, escape) -> str:
    """`markdown` with the main element's missing blocks put back (`escape` makes text Markdown-safe)."""
    main = next(iter(tree.xpath(_MAIN)), None)
    if main is None:
        return markdown
    lines = markdown.splitlines()
    flat, starts, ends = _flatten(lines)
    whole_lines = set(zip(starts, ends))
    inserts: dict[int, list[str]] = {}  # after line i (-1: before the first)
    cursor, anchor = 0, -1
    for tag, text in text_blocks(main):
        needle = letters_only(text)
        if not needle:
            continue
        # Looked for after the last block found, then anywhere: trafilatura sometimes moves a
        # part of the page (a table, a section) away from its place, and the next block follows it.
        found = _find(flat, needle, cursor, whole_lines, near=_NEAR_LETTERS)
        found = found if found >= 0 else _find(flat, needle, 0, whole_lines)
        if found >= 0:
            cursor = found + len(needle)
            anchor = bisect.bisect_right(starts, cursor - 1) - 1
        else:
            inserts.setdefault(anchor, []).append(_as_markdown(tag, text, escape))
    if not inserts:
        return markdown
    out = list(inserts.get(-1, []))
    for i, line in enumerate(lines):
        out.append(line)
        for block in inserts.get(i, []):
            out.extend(["", block, ""])
    return "\n".join(out)


def _find(flat: str, needle: str, start: int, whole_lines: set[tuple[int, int]], near: int = -1) -> int:
    """Where the block `needle` is in the flattened Markdown from `start`, or -1. A short block
    counts where it is a whole line, or within `near` letters of `start` (trafilatura joins a
    caption to the code before it); elsewhere it is a coincidence, not the block: the term
    "datetime.MAXYEAR" found as the start of "datetime(MAXYEAR, 12, 31, 23, 59," further down had
    put the constant's description inside another's, parting "9999" from what it is (pyf02)."""
    found = flat.find(needle, start)
    while found >= 0 and len(needle) < _SHORT_BLOCK_LETTERS and found - start > near \
            and (found, found + len(needle)) not in whole_lines:
        found = flat.find(needle, found + 1)
    return found


def _flatten(lines: list[str]) -> tuple[str, list[int], list[int]]:
    """The lines' normalised text joined, and where each line starts (after its list number: "1.
    It can handle any Unicode code point" is that block) and ends in it."""
    parts, starts, ends, position = [], [], [], 0
    for line in lines:
        starts.append(position + len(letters_only(_LIST_NUMBER.match(line).group())))
        text = letters_only(line)
        parts.append(text)
        position += len(text)
        ends.append(position)
    return "".join(parts), starts, ends


def letters_only(text: str) -> str:
    """`text` as its letters and digits alone, lower-cased: how a block is looked for in Markdown."""
    return _NOT_LETTERS.sub("", text.casefold())


def text_blocks(element):
    """(tag, own text) of every block inside `element`, in document order."""
    for block in element.iter(*_BLOCKS):
        if any(parent.tag in _SKIPPED or parent.tag in _INLINE for parent in block.iterancestors()):
            continue
        text = " ".join(_own_text(block).replace("¶", "").split())
        if text:
            yield block.tag, text


def _own_text(block) -> str:
    """The block's text without that of the blocks nested in it (each is a block of its own)."""
    parts = [block.text or ""]
    for child in block:
        if child.tag in _INLINE:
            parts.append(child.text_content())
        else:
            parts.append(" ")
        parts.append(child.tail or "")
    return "".join(parts)


def _as_markdown(tag: str, text: str, escape) -> str:
    text = escape(text)
    if re.fullmatch(r"h[1-6]", tag):
        return "#" * int(tag[1]) + " " + text
    if tag == "li":
        return "- " + text
    return re.sub(r"^(#+|[-+*]|\d+[.)])(?=\s)", r"\\\1", text)  # plain text that looks like a heading or bullet

