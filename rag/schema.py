"""The small records passed between stages, and their JSON forms.

`Hit` and `Answer` are public contracts (see ARCHITECTURE.md): `pakus search --json` prints a list
of `Hit.to_dict()`, `pakus ask --json` prints `Answer.to_dict()`. Add fields; never rename them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Document:
    """One source file, cleaned. `offsets[i]` is the index in the original file of `text[i]`."""

    source: str  # path relative to the project root, e.g. "seeds/foo.md"
    title: str
    text: str
    offsets: list[int]
    sections: list[tuple[int, str]] = field(default_factory=list)  # (clean start, heading)
    metadata: dict[str, Any] = field(default_factory=dict)  # title, authors, date, format, ... as found
    # Paged formats (PDF): the original offset where each page's extracted text starts, page 1
    # first. The "original" of a PDF is its pages' extracted texts laid end to end, so a span maps
    # to (page, span within that page's text) by `page_span`. Empty for formats without pages.
    page_starts: list[int] = field(default_factory=list)

    def page_span(self, start: int, end: int) -> tuple[int | None, int, int]:
        """(page number from 1, start, end within that page's text) for an original span; for a
        format without pages, (None, start, end) unchanged."""
        return page_span(self.page_starts, start, end)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a clean half-open span [start, end) to the half-open span in the original file."""
        if end <= start:
            position = self.offsets[start] if start < len(self.offsets) else (self.offsets[-1] + 1 if self.offsets else 0)
            return position, position
        return self.offsets[start], self.offsets[end - 1] + 1


def page_span(page_starts: list[int], start: int, end: int) -> tuple[int | None, int, int]:
    """See `Document.page_span`; a span that runs into the next page keeps its first page."""
    if not page_starts:
        return None, start, end
    import bisect

    index = max(0, bisect.bisect_right(page_starts, start) - 1)
    return index + 1, start - page_starts[index], end - page_starts[index]


@dataclass
class Chunk:
    """A passage of a document: the unit that is embedded, retrieved and cited."""

    chunk_id: str
    source: str
    title: str
    section: str
    start: int  # character span in the original source file, half-open
    end: int
    text: str  # cleaned text
    kind: str = "content"  # "content", or "front_matter" / "references" (down-weighted in retrieval)
    page: int | None = None  # page of `start` in a paged format (PDF), from 1
    page_start: int = 0  # original offset where that page starts: start - page_start is within the page

    @staticmethod
    def make_id(source: str, text: str) -> str:
        """Stable id: the same text from the same file always gets the same id."""
        return hashlib.sha256(f"{source}\n{text}".encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


@dataclass
class Hit:
    """A retrieved chunk with its rank and scores."""

    rank: int
    chunk: Chunk
    score: float  # fused score; higher is better
    dense_score: float | None = None  # cosine similarity, None if the chunk was not in the dense list
    lexical_score: float | None = None  # BM25 score, None if not in the lexical list
    dense_rank: int | None = None
    lexical_rank: int | None = None

    # Convenience accessors so callers need not reach into the chunk.
    @property
    def chunk_id(self) -> str:
        return self.chunk.chunk_id

    @property
    def source(self) -> str:
        return self.chunk.source

    @property
    def title(self) -> str:
        return self.chunk.title

    @property
    def section(self) -> str:
        return self.chunk.section

    @property
    def start(self) -> int:
        return self.chunk.start

    @property
    def end(self) -> int:
        return self.chunk.end

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def page(self) -> int | None:
        return self.chunk.page

    def to_dict(self) -> dict[str, Any]:
        # For a PDF, start and end are within the page's extracted text (the contract).
        offset = self.chunk.page_start if self.chunk.page else 0
        return {
            "rank": self.rank,
            "chunk_id": self.chunk_id,
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "page": self.page,
            "start": self.start - offset,
            "end": self.end - offset,
            "text": self.text,
            "score": round(self.score, 6),
            "dense_score": None if self.dense_score is None else round(self.dense_score, 6),
            "lexical_score": None if self.lexical_score is None else round(self.lexical_score, 6),
            "dense_rank": self.dense_rank,
            "lexical_rank": self.lexical_rank,
        }


@dataclass
class Citation:
    """One `[n]` of an answer, resolved to the passage it names."""

    n: int
    source: str
    title: str
    section: str
    start: int  # span in the source file of `quote`
    end: int
    quote: str  # the sentence of the passage that best supports the answer (or the passage)
    supported: bool
    score: float  # how strongly the cited sentences are backed by the passage (0..1)
    chunk_id: str = ""
    passage: str = ""  # the whole passage, so a UI can show the quote in context
    page: int | None = None  # in a paged format (PDF): start and end are within this page's text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """What `ask` returns and `pakus ask --json` prints."""

    question: str
    answer: str  # text with [n] markers; on a decline, the fixed refusal sentence
    answered: bool
    citations: list[Citation] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    timings: dict[str, Any] = field(default_factory=dict)
    rewritten_question: str | None = None  # the stand-alone form of a follow-up, if it was rewritten
    unsupported_sentences: list[str] = field(default_factory=list)  # removed or flagged by the check
    # When answered is False: "no_evidence" (retrieval found nothing, the model was not asked),
    # "unknown_name" (the question names something no document mentions; the model was not asked),
    # "other_language" (the question is not in the documents' language; the model was not asked),
    # "model_declined" (the model said the passages do not answer), "unsupported" (no sentence of
    # the model's answer passed the citation check).
    decline_reason: str | None = None
    prompt: str | None = None  # the prompt the model saw (for --explain)
    raw_answer: str | None = None  # the model's text before the citation check

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "rewritten_question": self.rewritten_question,
            "answer": self.answer,
            "answered": self.answered,
            "decline_reason": self.decline_reason,
            "citations": [c.to_dict() for c in self.citations],
            "unsupported_sentences": list(self.unsupported_sentences),
            "hits": [h.to_dict() for h in self.hits],
            "timings": dict(self.timings),
            "raw_answer": self.raw_answer,
        }
