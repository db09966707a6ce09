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

import importlib
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from ..catalog import Catalog
    from ..collections import CollectionInfo
    from ..schema import Chunk

STORES = ("embedded",)


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


def open_store(folder: Path, info: CollectionInfo, catalog: Catalog, *, writable: bool) -> Store:
    if info.store not in STORES:
        raise ConfigError(f"unknown store {info.store!r}; valid stores: {', '.join(STORES)}")
    module = importlib.import_module(f"{__package__}.{info.store}")
    return module.open_store(folder, info, catalog, writable=writable)
