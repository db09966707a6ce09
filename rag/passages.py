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
    text = document.text[clean_start:clean_end].strip()
    chunk = Chunk(
        chunk_id=Chunk.make_id(first.source, text),
        source=first.source,
        title=first.title,
        section=earlier.section,
        start=start,
        end=end,
        text=text,
        kind=first.chunk.kind,
        page=earlier.chunk.page,
        page_start=earlier.chunk.page_start,
    )
    return replace(first, chunk=chunk, score=max(first.score, second.score))


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
    return [replace(p, rank=n) for n, p in enumerate(passages, start=1)]
