"""The embedded store (default): chunks and vectors in the collection's SQLite database, searched
with FAISS (dense) and bm25s (lexical) in this process. Nothing to run, nothing to configure.

Chunks live in the `chunks` table of the catalog database, so a document's chunks and its catalog
entry are written in one transaction. The search structures are derived from that table: after a
batch of writes, `finish` writes them to `search-<generation>/`, named after the catalog's
generation counter, with one atomic rename. A reader loads the folder of the current generation,
or, when a writer was interrupted before writing it, builds them in memory from the table: the
collection answers correctly either way, and nothing half-written is ever read.

FAISS runs on one thread: a single query on a flat index is memory-bound, and on 2 cores OpenMP's
start-up made one query 10-50x slower with the default thread count.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..chunking import searchable_text
from ..errors import IndexCorruptError
from ..lexical import tokenize
from ..schema import Chunk
from .base import SortedList, knows_word

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL, record TEXT NOT NULL,
    vector BLOB NOT NULL, tokens TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc);
"""
SEARCH_PREFIX = "search-"


@dataclass
class _Search:
    """The in-memory search structures of one generation of the table."""

    chunk_ids: list[str]  # by position in both indexes
    dense: Any  # faiss.IndexFlatIP
    lexical: Any  # bm25s.BM25, or None when the collection is empty
    vocabulary: list[str]  # sorted lexical tokens


def _numbered(documents: list[list[str]]):
    """bm25s input with token ids in order of first appearance. Given plain words, bm25s numbers
    its vocabulary through a set, whose order changes with each process's string hashing: the same
    documents would give different files every time."""
    from bm25s.tokenization import Tokenized

    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(word, len(vocab)) for word in words] for words in documents]
    return Tokenized(ids=ids, vocab=vocab)


class EmbeddedStore:
    name = "embedded"

    def __init__(self, folder: Path, db: sqlite3.Connection, dimension: int, *, writable: bool, generation):
        self.folder = folder
        self.db = db
        self.dimension = dimension
        self.writable = writable
        self._generation = generation  # the catalog's counter, read when the search is loaded
        self._search: _Search | None = None
        if writable:
            db.executescript(_SCHEMA)

    # --- writes (inside the catalog's transaction) ---------------------------------------------

    def upsert(self, doc: str, chunks: list[Chunk], vectors: np.ndarray) -> None:
        self.delete(doc)
        rows = [(c.chunk_id, doc, json.dumps(c.to_dict(), ensure_ascii=False), np.asarray(v, dtype=np.float32).tobytes(),
                 " ".join(tokenize(searchable_text(c)))) for c, v in zip(chunks, vectors)]
        self.db.executemany("INSERT OR REPLACE INTO chunks (chunk_id, doc, record, vector, tokens) VALUES (?, ?, ?, ?, ?)", rows)
        self._search = None

    def delete(self, doc: str) -> None:
        self.db.execute("DELETE FROM chunks WHERE doc = ?", (doc,))
        self._search = None

    def rename(self, doc: str, source: str) -> None:
        self.db.execute("UPDATE chunks SET record = json_set(record, '$.source', ?) WHERE doc = ?", (source, doc))

    def finish(self) -> None:
        """Write the search structures of the current generation (unless they are there already),
        then drop older generations and what interrupted writers left (`.tmp-search-*`): every
        writer cleans up, even one that had nothing to write."""
        search = self._load_or_build(write=True)
        self._search = search
        current = self.folder / f"{SEARCH_PREFIX}{self._generation()}"
        for old in self.folder.iterdir():
            if old.name.startswith((SEARCH_PREFIX, ".tmp-search-")) and old != current and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)

    # --- reads -------------------------------------------------------------------------------------

    def _search_now(self) -> _Search:
        if self._search is None:
            self._search = self._load_or_build(write=False)
        return self._search

    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        search = self._search_now()
        if not search.chunk_ids:
            return []
        scores, positions = search.dense.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), min(k, len(search.chunk_ids)))
        return [(search.chunk_ids[p], float(s)) for p, s in zip(positions[0], scores[0]) if p >= 0]

    def lexical_search(self, tokens: list[str], k: int) -> list[tuple[str, float]]:
        search = self._search_now()
        if search.lexical is None:
            return []
        vocabulary = search.lexical.vocab_dict
        tokens = [t for t in tokens if t in vocabulary]
        if not tokens:
            return []
        scores = np.asarray(search.lexical.get_scores(tokens))
        top = min(k, len(scores))
        order = np.argpartition(-scores, top - 1)[:top]
        order = order[np.lexsort((order, -scores[order]))]  # best first; ties in index order
        return [(search.chunk_ids[i], float(scores[i])) for i in order if scores[i] > 0]

    def chunks(self, chunk_ids: list[str]) -> dict[str, Chunk]:
        found: dict[str, Chunk] = {}
        for start in range(0, len(chunk_ids), 500):
            batch = chunk_ids[start:start + 500]
            marks = ",".join("?" * len(batch))
            for chunk_id, record in self.db.execute(f"SELECT chunk_id, record FROM chunks WHERE chunk_id IN ({marks})", batch):
                found[chunk_id] = Chunk.from_dict(json.loads(record))
        return found

    def documents(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT doc, count(*) FROM chunks GROUP BY doc"))

    def knows_word(self, word: str) -> bool:
        return knows_word(word, SortedList(self._search_now().vocabulary))

    def close(self) -> None:
        self._search = None

    # --- the search structures ---------------------------------------------------------------------

    def _load_or_build(self, *, write: bool) -> _Search:
        generation = self._generation()
        folder = self.folder / f"{SEARCH_PREFIX}{generation}"
        if folder.is_dir():
            try:
                return self._read(folder)
            except Exception as exc:  # damaged: the table is the truth, rebuild from it
                if write:
                    shutil.rmtree(folder, ignore_errors=True)
                else:
                    print(f"pakus: warning: the search files {folder} are damaged ({type(exc).__name__}: {exc}); "
                          "searching the catalog directly, which is slower (repair: pakus doctor --repair)", file=sys.stderr)
        search = self._build()
        if write:
            self._write(search, folder)
        return search

    def _build(self) -> _Search:
        import bm25s
        import faiss

        faiss.omp_set_num_threads(1)
        chunk_ids, vectors, token_lists = [], [], []
        for chunk_id, vector, tokens in self.db.execute("SELECT chunk_id, vector, tokens FROM chunks ORDER BY id"):
            chunk_ids.append(chunk_id)
            vectors.append(vector)
            token_lists.append(tokens.split() or ["<empty>"])
        dense = faiss.IndexFlatIP(self.dimension)
        if vectors:
            matrix = np.frombuffer(b"".join(vectors), dtype=np.float32).reshape(len(vectors), -1)
            if matrix.shape[1] != self.dimension:
                raise IndexCorruptError(f"{self.folder}: stored vectors have {matrix.shape[1]} dimensions, the embedder {self.dimension}; "
                                        "rebuild the collection (pakus add --force)")
            dense.add(matrix)
        lexical = None
        if token_lists:
            lexical = bm25s.BM25()
            lexical.index(_numbered(token_lists), show_progress=False)
        vocabulary = sorted(lexical.vocab_dict) if lexical is not None else []
        return _Search(chunk_ids, dense, lexical, vocabulary)

    def _read(self, folder: Path) -> _Search:
        import bm25s
        import faiss

        faiss.omp_set_num_threads(1)
        chunk_ids = json.loads((folder / "chunk_ids.json").read_text(encoding="utf-8"))
        dense = faiss.read_index(str(folder / "dense.faiss"))
        lexical = bm25s.BM25.load(str(folder / "bm25"), show_progress=False) if (folder / "bm25").is_dir() else None
        if dense.ntotal != len(chunk_ids):
            raise IndexCorruptError(f"{folder} is inconsistent")
        vocabulary = sorted(lexical.vocab_dict) if lexical is not None else []
        return _Search(chunk_ids, dense, lexical, vocabulary)

    def _write(self, search: _Search, folder: Path) -> None:
        """Into a temporary folder, then one rename; `finish` removes older generations after."""
        import faiss

        tmp = Path(tempfile.mkdtemp(prefix=".tmp-search-", dir=self.folder))
        try:
            (tmp / "chunk_ids.json").write_text(json.dumps(search.chunk_ids), encoding="utf-8")
            faiss.write_index(search.dense, str(tmp / "dense.faiss"))
            if search.lexical is not None:
                search.lexical.save(str(tmp / "bm25"), show_progress=False)
            for path in tmp.rglob("*"):
                if path.is_file():
                    with open(path, "rb") as handle:
                        os.fsync(handle.fileno())
            tmp.chmod(0o755)
            os.rename(tmp, folder)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, (OSError, RuntimeError)):  # faiss reports a failed write as RuntimeError
                from ..errors import IndexWriteError

                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise IndexWriteError(f"cannot write the search files in {self.folder} ({first}): free some disk space, "
                                      "then run the command again; queries meanwhile search the catalog directly") from None
            raise


def open_store(folder: Path, info, catalog, *, writable: bool) -> EmbeddedStore:
    dimension = int(info.embedder.get("dimension") or 384)
    return EmbeddedStore(folder, catalog.db, dimension, writable=writable, generation=catalog.generation)
