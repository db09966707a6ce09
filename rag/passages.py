"""Passage selection: ranked hits -> the few, tight, non-repeating passages the model reads.

Neighbouring chunks overlap by a sentence and often rank together, so giving them to the model as
they are repeats text, and every repeated token costs prefill time on a CPU. Hits from the same
document whose spans overlap or touch are merged into one passage (the clean text of the union of
their spans), best rank first, until `k` passages or the token budget are reached.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import replace

from .schema import Chunk, Document, Hit
from .sentences import sentence_spans

# Rough prompt budget for passage text, in characters (~4 per token): three 64-token chunks fit,
# merged runs of neighbours fit, and the prompt stays near 300 tokens plus the cached instructions.
MAX_PASSAGE_CHARS = 1100
_ADJACENT = 2  # characters of the source file between two spans that still count as touching


def _clean_span(document: Document, start: int, end: int) -> tuple[int, int]:
    """Clean-text span of an original-file span."""
    return bisect.bisect_left(document.offsets, start), bisect.bisect_left(document.offsets, end)


def _merge(first: Hit, second: Hit, documents: Mapping[str, Document]) -> Hit | None:
    """One hit covering both, if they come from the same document and overlap or touch."""
    if first.source != second.source or second.start > first.end + _ADJACENT or first.start > second.end + _ADJACENT:
        return None
    document = documents.get(first.source)
    if document is None:
        return None
    start, end = min(first.start, second.start), max(first.end, second.end)
    earlier = first if first.start <= second.start else second
    clean_start, clean_end = _clean_span(document, start, end)
    merged = _spanning(first, earlier, start, end, document.text[clean_start:clean_end].strip())
    return replace(merged, score=max(first.score, second.score))


def _spanning(hit: Hit, earlier: Hit, start: int, end: int, text: str) -> Hit:
    """`hit` with its passage replaced by `text`, the clean text of the original span [start, end)
    of the same document; section and page are those of `earlier`, where the span begins."""
    chunk = Chunk(chunk_id=Chunk.make_id(hit.source, text), source=hit.source, title=hit.title, section=earlier.section,
                  start=start, end=end, text=text, kind=hit.chunk.kind, page=earlier.chunk.page,
                  page_start=earlier.chunk.page_start)
    return replace(hit, chunk=chunk)


def _absorb(passages: list[Hit], i: int, documents: Mapping[str, Document]) -> None:
    """Merge into `passages[i]` the passages it now overlaps or touches (a hit between them joined them).

    The better ranked of two passages (the earlier one) takes the other in, so ranks keep their order.
    """
    j = 0
    while j < len(passages):
        first, second = min(i, j), max(i, j)
        merged = _merge(passages[first], passages[second], documents) if i != j else None
        if merged is None:
            j += 1
            continue
        passages[first] = merged
        del passages[second]
        i, j = first, 0


def select_passages(hits: list[Hit], documents: Mapping[str, Document], k: int, max_chars: int = MAX_PASSAGE_CHARS) -> list[Hit]:
    """At most `k` passages built from `hits` (ranked best first), renumbered from 1."""
    passages: list[Hit] = []
    for hit in hits:
        for i, passage in enumerate(passages):
            merged = _merge(passage, hit, documents)
            if merged is not None:
                if sum(len(p.text) for p in passages) - len(passage.text) + len(merged.text) <= max_chars:
                    passages[i] = merged
                    _absorb(passages, i, documents)
                break
        else:
            if len(passages) < k and (not passages or sum(len(p.text) for p in passages) + len(hit.text) <= max_chars):
                passages.append(hit)
    for i, passage in enumerate(passages):
        room = max_chars - sum(len(p.text) for p in passages)
        passages[i] = _from_sentence_start(passage, documents, min(room, SENTENCE_START_CHARS))
    return [replace(p, rank=n) for n, p in enumerate(passages, start=1)]


# How far back a passage may reach for the start of the sentence it begins inside.
SENTENCE_START_CHARS = 200


def _from_sentence_start(passage: Hit, documents: Mapping[str, Document], max_chars: int) -> Hit:
    """`passage` from the start of the sentence it begins inside, if that is at most `max_chars`
    back in its paragraph. Chunks split a sentence too long for one chunk: the next chunk then
    begins "and WriteXLS (...) each contain a function to write ... using Python and Perl
    respectively", and the package that uses Python is left in the chunk before (rmk10)."""
    document = documents.get(passage.source)
    if document is None or max_chars <= 0:
        return passage
    start, end = _clean_span(document, passage.start, passage.end)
    paragraph = document.text.rfind("\n", 0, start) + 1
    begin = max(paragraph, start - max_chars)
    window = document.text[begin:start + 1]
    # The sentence holding the passage's first character, as split in the window before it.
    inside = [(a, b) for a, b in sentence_spans(window) if a < len(window) - 1 < b]
    if not inside or begin + inside[0][0] >= start or (inside[0][0] == 0 and begin > paragraph):
        return passage  # it starts a sentence, or the sentence starts further back than allowed
    new_start = begin + inside[0][0]
    new_start += len(document.text[new_start:start]) - len(document.text[new_start:start].lstrip())
    if new_start >= start:
        return passage
    text = document.text[new_start:end].strip()
    return _spanning(passage, passage, document.original_span(new_start, end)[0], passage.end, text)


# The text after a passage that a continuation may take: about one chunk (64 tokens).
CONTINUATION_CHARS = 400


def continuation(passage: Hit, documents: Mapping[str, Document], max_chars: int = CONTINUATION_CHARS) -> Hit | None:
    """The whole sentences that follow `passage` in its section, up to `max_chars`, as a hit of
    their own; None at a section's end. A heading or an opening sentence that ranks first can
    only set the scene ("Sometimes data files have no field delimiters ...") and the chunk after
    it says what to do, in words the question does not share."""
    document = documents.get(passage.source)
    if document is None:
        return None
    begin = bisect.bisect_left(document.offsets, passage.end)
    section_end = next((start for start, _ in document.sections if start > begin), len(document.text))
    window = document.text[begin:min(section_end, begin + max_chars)]
    spans = [span for span in sentence_spans(window) if window[span[0]:span[1]].strip()]
    if begin + max_chars < section_end and len(spans) > 1:
        spans = spans[:-1]  # the window may cut its last sentence off
    if not spans:
        return None
    start, end = begin + spans[0][0], begin + spans[-1][1]
    start += len(document.text[start:end]) - len(document.text[start:end].lstrip())
    return _spanning(passage, passage, *document.original_span(start, end), document.text[start:end].strip())


def passages_below(given: list[Hit], documents: Mapping[str, Document], max_chars: int = MAX_PASSAGE_CHARS) -> list[Hit]:
    """Passages for a last attempt after `given` were declined: the text that follows each of them
    in its section (`continuation`), within the same budget, renumbered from 1."""
    following = [hit for hit in (continuation(g, documents) for g in given) if hit is not None]
    return select_passages(following, documents, len(given), max_chars)
