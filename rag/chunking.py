"""Chunking: a `Document` -> `Chunk`s that follow its structure.

A chunk never crosses a section heading (unless the section so far is too small to stand alone,
like the one-line sections of a paper's front matter), is built from whole sentences, and is sized
in the embedder's own tokens so the embedder never silently truncates it. Consecutive chunks of a
section share `overlap` sentences, so a fact stated across a chunk boundary is whole in one of them.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

from .schema import Chunk, Document

TokenCounter = Callable[[str], int]
# Character spans of a text's word pieces, special tokens left out (an embedder's `token_spans`).
TokenSpans = Callable[[str], list[tuple[int, int]]]
SpanCounter = Callable[[int, int], int]  # tokens of document.text[start:end]

# Words after which a period does not end a sentence ("p. 45", "pp. 7-8", "Jones, S. G.").
_ABBREVIATIONS = {"p", "pp", "vol", "no", "dr", "mr", "mrs", "ms", "jr", "sr", "st", "etc", "vs", "e.g", "i.e", "fig", "al", "u.s", "inc", "co"}
_LIST_NUMBER = re.compile(r"^\s*([-*+]\s*)?\d+[.)]\s*$")
_SENTENCE_END = re.compile(r"[.!?]['\"”’)\]]*\s+(?=[\"“‘'(\[]?[A-Z0-9$])")

# Section headings that mark a paper's front matter or its bibliography: kept in the index (the
# journal name is a fair question) but down-weighted in retrieval so they never crowd out content.
_FRONT_MATTER = re.compile(r"article info|history of article|corresponding author|mail id|e-?mail|how to cite|keywords|copyright|affiliation", re.I)
_REFERENCES = re.compile(r"^(references|bibliography|works cited|sources)\b", re.I)
_BODY_START = re.compile(r"^(abstract|introduction|summary)\b", re.I)


@dataclass(frozen=True)
class ChunkSettings:
    max_tokens: int = 64
    overlap_sentences: int = 1
    min_section_tokens: int = 48  # a section smaller than this joins the next one


@dataclass
class _Unit:
    start: int  # clean-text span
    end: int
    is_heading: bool
    section: str
    tokens: int


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence spans of `text` (shifted by `offset`), by punctuation, minding abbreviations."""
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        segment = text[start:match.end()]
        if _LIST_NUMBER.match(segment):  # "- 3. To control ..." is one item, not two sentences
            continue
        word = re.search(r"([\w.]+)[.!?]['\"”’)\]]*\s+$", segment)
        if word:
            last = word.group(1).lower()
            if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
                continue
        spans.append((offset + start, offset + match.start() + len(match.group().rstrip())))
        start = match.end()
    if text[start:].strip():
        spans.append((offset + start, offset + len(text.rstrip())))
    return spans


def span_counter(text: str, count_tokens: TokenCounter, token_spans: TokenSpans | None = None) -> SpanCounter:
    """count(start, end): what `count_tokens(text[start:end])` gives, for the spans the chunker
    measures (they start and end between words or at punctuation).

    With `token_spans`, the text is tokenised once and a count is two bisections: tokenising every
    sentence and every growing chunk again took 16 CPU-seconds of chunking the 10,033 wiki
    articles, 4 this way, with the same chunks for every one. A word piece never crosses a space
    or a punctuation mark (BERT splits there before anything else), so the pieces inside such a
    span are exactly its own; the special tokens [CLS] and [SEP] add 2, as `count_tokens` does.
    """
    if token_spans is None:
        return lambda start, end: count_tokens(text[start:end])
    spans = token_spans(text)
    starts = [start for start, _ in spans]
    ends = [end for _, end in spans]
    return lambda start, end: max(0, bisect.bisect_right(ends, end) - bisect.bisect_left(starts, start)) + 2


def _units(document: Document, count: SpanCounter) -> list[_Unit]:
    heading_at = dict(document.sections)
    units: list[_Unit] = []
    section = ""
    for block in re.finditer(r"[^\n]+(?:\n(?!\n)[^\n]+)*", document.text):
        if block.start() in heading_at:
            section = heading_at[block.start()]
            units.append(_Unit(block.start(), block.end(), True, section, count(block.start(), block.end())))
            continue
        for start, end in split_sentences(block.group(), block.start()):
            units.append(_Unit(start, end, False, section, count(start, end)))
    return units


def _split_long(unit: _Unit, document: Document, count: SpanCounter, max_tokens: int) -> list[_Unit]:
    """A sentence longer than a whole chunk is cut at word boundaries (rare: tables, lists).

    Pieces are half a chunk long so that a heading or a neighbouring sentence still fits beside one.
    """
    max_tokens = max(1, max_tokens // 2)
    pieces, start = [], unit.start
    words = list(re.finditer(r"\S+", document.text[unit.start:unit.end]))
    piece_start = None
    for word in words:
        w_start, w_end = unit.start + word.start(), unit.start + word.end()
        if piece_start is None:
            piece_start = w_start
        if count(piece_start, w_end) > max_tokens and start != piece_start:
            pieces.append(_Unit(piece_start, start, False, unit.section, count(piece_start, start)))
            piece_start = w_start
        start = w_end
    if piece_start is not None:
        pieces.append(_Unit(piece_start, start, False, unit.section, count(piece_start, start)))
    return pieces


def _kind(section: str, before_body: bool) -> str:
    if _REFERENCES.search(section):
        return "references"
    if before_body or _FRONT_MATTER.search(section):
        return "front_matter"
    return "content"


def chunk_document(document: Document, count_tokens: TokenCounter, settings: ChunkSettings = ChunkSettings(),
                   token_spans: TokenSpans | None = None) -> list[Chunk]:
    """The chunks of `document`, sized by `count_tokens` (see `span_counter` for `token_spans`)."""
    count = span_counter(document.text, count_tokens, token_spans)
    units: list[_Unit] = []
    for unit in _units(document, count):
        if unit.tokens > settings.max_tokens:
            units.extend(_split_long(unit, document, count, settings.max_tokens))
        else:
            units.append(unit)
    has_body_heading = any(_BODY_START.search(h) for _, h in document.sections)

    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    for unit in units:
        tokens = count(current[0].start, unit.end) if current else unit.tokens
        # A heading starts a new chunk, unless the chunk so far is a whole section too small to
        # stand alone (a paper's one-line "Mail Id:" sections), which then joins the next one.
        tiny_section = bool(current) and (current[0].is_heading or not groups) and (
            count(current[0].start, current[-1].end) < settings.min_section_tokens)
        section_break = unit.is_heading and bool(current) and not tiny_section
        if current and (section_break or tokens > settings.max_tokens):
            groups.append(current)
            # Overlap: carry the last sentences into the next chunk, within the same section only.
            carried = [] if unit.is_heading else [u for u in current[-settings.overlap_sentences:] if not u.is_heading and u.section == unit.section] if settings.overlap_sentences else []
            while carried and count(carried[0].start, unit.end) > settings.max_tokens:
                carried = carried[1:]
            current = carried
        current.append(unit)
    if current:
        groups.append(current)

    chunks = []
    seen: set[str] = set()
    body_started = not has_body_heading
    for group in groups:
        start, end = group[0].start, group[-1].end
        first_content = next((u for u in group if not u.is_heading), group[0])
        section = group[0].section if group[0].is_heading else first_content.section
        if any(u.is_heading and _BODY_START.search(u.section) for u in group) or _BODY_START.search(section):
            body_started = True
        text = document.text[start:end]
        span_start, span_end = document.original_span(start, end)
        chunk_id = Chunk.make_id(document.source, text)
        if chunk_id in seen:  # the same passage twice in one document (a repeated notice) adds nothing
            continue
        seen.add(chunk_id)
        page, page_offset, _ = document.page_span(span_start, span_end)
        chunks.append(Chunk(
            chunk_id=chunk_id,
            source=document.source,
            title=document.title,
            section=section,
            start=span_start,
            end=span_end,
            text=text,
            kind=_kind(section, not body_started),
            page=page,
            page_start=span_start - page_offset if page else 0,
        ))
    return chunks


def searchable_text(chunk: Chunk) -> str:
    """What both the dense and the lexical index see of a chunk."""
    # The section heading gives a short passage its context ("Reimbursement for Military Service").
    return chunk.text if not chunk.section or chunk.text.startswith(chunk.section) else f"{chunk.section}: {chunk.text}"
