"""Stores: where a collection's chunks, vectors and lexical index live.

Retrieval talks to this narrow interface only, never to FAISS, bm25s or Milvus: fusion, weights
and every check stay above the store, so answers do not change with the store. A store is one
module in this package defining `open_store(folder, info, catalog, writable)`.

Chunks belong to a document key (the sha256 of the document's content): adding a document is
`upsert(doc, chunks, vectors)`, which replaces whatever that key held; removing it is `delete(doc)`.
Lexical search takes words already tokenised by `rag.lexical.tokenize`, so every store ranks the
same words.
"""

from __future__ import annotations

import bisect
import difflib
import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError
from ..lexical import fold

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from ..catalog import Catalog
    from ..collections import CollectionInfo
    from ..schema import Chunk

STORES = ("embedded", "milvus")


class Store(Protocol):
    name: str

    def upsert(self, doc: str, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Replace the chunks of document `doc` by `chunks` (with one unit vector each)."""

    def delete(self, doc: str) -> None:
        """Remove every chunk of document `doc`."""

    def rename(self, doc: str, source: str) -> None:
        """The chunks of document `doc` are now shown and cited as `source` (its other name)."""

    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """(chunk_id, cosine) of the `k` chunks nearest to the unit `vector`, best first."""

    def lexical_search(self, tokens: list[str], k: int) -> list[tuple[str, float]]:
        """(chunk_id, BM25 score > 0) of the `k` best matches of `tokens`, best first."""

    def chunks(self, chunk_ids: list[str]) -> dict[str, Chunk]:
        """The chunks with these ids (missing ids are left out)."""

    def documents(self) -> dict[str, int]:
        """Chunk count per document key held."""

    def knows_word(self, word: str) -> bool:
        """Whether any chunk holds this lexical token (or, for a long word, another word with its
        first letters: "pakistani" for "pakistan"), without scanning the text."""

    def finish(self) -> None:
        """After a batch of writes: make them fast to query (e.g. write the search files)."""

    def close(self) -> None: ...


class SortedWords(Protocol):
    """A store's lexical vocabulary, in code point order (SQLite's default order for UTF-8 text)."""

    def ceiling(self, word: str) -> str | None:
        """The first word >= `word`, or None."""

    def between(self, low: str, high: str) -> Iterable[str]:
        """The words w with low <= w < high."""


class SortedList:
    """SortedWords over a sorted Python list."""

    def __init__(self, words: list[str]):
        self.words = words

    def ceiling(self, word: str) -> str | None:
        position = bisect.bisect_left(self.words, word)
        return self.words[position] if position < len(self.words) else None

    def between(self, low: str, high: str) -> list[str]:
        return self.words[bisect.bisect_left(self.words, low):bisect.bisect_left(self.words, high)]


def knows_word(word: str, vocabulary: SortedWords) -> bool:
    """`Store.knows_word` on a sorted vocabulary, the same for every store: the word itself or its
    folded form, another form of it, or a typo of it."""
    for form in {word, fold(word)}:
        if vocabulary.ceiling(form) == form:
            return True
    # Another form of the same word: the start of a longer one ("act" of "action"), or, for a
    # long word, its first letters ("pakistani" for "pakistan's").
    prefix = word[: max(5, len(word) - 3)] if len(word) >= 6 else word
    found = vocabulary.ceiling(prefix)
    if found is not None and found.startswith(prefix):
        return True
    # A typo ("Suport"): a word of about the same length and the same first letter, 80% alike.
    # Only that slice of the sorted vocabulary is compared, so it stays fast on a large one.
    nearby = [w for w in vocabulary.between(word[:1], chr(ord(word[0]) + 1)) if abs(len(w) - len(word)) <= 2]
    return bool(difflib.get_close_matches(word, nearby, n=1, cutoff=0.8))


def open_store(folder: Path, info: CollectionInfo, catalog: Catalog, *, writable: bool) -> Store:
    if info.store not in STORES:
        raise ConfigError(f"unknown store {info.store!r}; valid stores: {', '.join(STORES)}")
    module = importlib.import_module(f"{__package__}.{info.store}")
    return module.open_store(folder, info, catalog, writable=writable)
