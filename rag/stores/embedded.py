"""The embedded store (default): chunks and vectors in the collection's SQLite database, searched
with FAISS (dense) and a BM25 index (lexical, rag/stores/bm25.py) in this process. Nothing to run,
nothing to configure.

Chunks live in the `chunks` table of the catalog database, so a document's chunks and its catalog
entry are written in one transaction. The search structures are derived from that table: after a
batch of writes, `finish` writes them to `search-<generation>/`, named after the catalog's
generation counter, with one atomic rename. A reader loads the folder of the current generation,
or, when a writer was interrupted before writing it, builds them in memory from the table: the
collection answers correctly either way, and nothing half-written is ever read.

`finish` makes the new generation from the one the writer started from, changing only the
documents it wrote (their old positions dropped, their rows appended): adding one file to the
27,000 chunks of 10,000 wiki articles costs about 0.3 s instead of 2 s of rebuilding. With no
such generation to start from (a first build, an interrupted writer, damaged files), it builds
from the table. A search folder holds:

    chunk_ids.json   the chunk id at each position, the order of both indexes
    dense.faiss      faiss.IndexFlatIP of the vectors
    bm25/            the lexical index (vocabulary.json, postings.npz)

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
from .bm25 import BM25

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
    lexical: BM25

    def changed(self, drop: list[int], rows: list[tuple[str, bytes, str]], dimension: int) -> _Search:
        """These structures without the chunks at positions `drop`, with `rows` (chunk id, vector,
        tokens) appended."""
        import faiss

        keep = np.ones(len(self.chunk_ids), dtype=bool)
        keep[drop] = False
        vectors = self.dense.reconstruct_n(0, self.dense.ntotal)[keep] if self.dense.ntotal else np.zeros((0, dimension), np.float32)
        dense = faiss.IndexFlatIP(dimension)
        dense.add(np.concatenate([vectors, _matrix([row[1] for row in rows], dimension)]))
        chunk_ids = [c for c, k in zip(self.chunk_ids, keep) if k] + [row[0] for row in rows]
        return _Search(chunk_ids, dense, self.lexical.without(drop).plus([_tokens(row[2]) for row in rows]))


def _tokens(joined: str) -> list[str]:
    return joined.split() or ["<empty>"]


def _matrix(vectors: list[bytes], dimension: int) -> np.ndarray:
    matrix = np.frombuffer(b"".join(vectors), dtype=np.float32).reshape(len(vectors), -1) if vectors else np.zeros((0, dimension), np.float32)
    if matrix.shape[1] != dimension:
        raise IndexCorruptError(f"stored vectors have {matrix.shape[1]} dimensions, the embedder {dimension}; "
                                "rebuild the collection (pakus add --force)")
    return matrix


def read_search(folder: Path) -> _Search:
    """The search structures written in `folder`; raises if they are damaged or incomplete."""
    import faiss

    faiss.omp_set_num_threads(1)
    chunk_ids = json.loads((folder / "chunk_ids.json").read_text(encoding="utf-8"))
    dense = faiss.read_index(str(folder / "dense.faiss"))
    lexical = BM25.load(folder / "bm25")
    if not dense.ntotal == len(chunk_ids) == len(lexical):
        raise IndexCorruptError(f"{folder} is inconsistent")
    return _Search(chunk_ids, dense, lexical)


class EmbeddedStore:
    name = "embedded"

    def __init__(self, folder: Path, db: sqlite3.Connection, dimension: int, *, writable: bool, generation):
        self.folder = folder
        self.db = db
        self.dimension = dimension
        self.writable = writable
        self._generation = generation  # the catalog's counter, read when the search is loaded
        self._search: _Search | None = None
        # What this writer changed since the generation it started from, for `finish`: documents
        # written (a write that was rolled back too: making its rows again changes nothing) and
        # the chunk ids they held before.
        self._started_at = generation() if writable else None
        self._written: set[str] = set()
        self._replaced: set[str] = set()
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
        self._written.add(doc)
        self._replaced.update(chunk_id for (chunk_id,) in self.db.execute("SELECT chunk_id FROM chunks WHERE doc = ?", (doc,)))
        self.db.execute("DELETE FROM chunks WHERE doc = ?", (doc,))
        self._search = None

    def rename(self, doc: str, source: str) -> None:
        self.db.execute("UPDATE chunks SET record = json_set(record, '$.source', ?) WHERE doc = ?", (source, doc))

    def finish(self) -> None:
        """Write the search structures of the current generation (unless they are there already),
        then drop older generations and what interrupted writers left (`.tmp-search-*`): every
        writer cleans up, even one that had nothing to write."""
        current = self.folder / f"{SEARCH_PREFIX}{self._generation()}"
        try:
            self._search = read_search(current)  # there, whole and readable: nothing to do
        except Exception:  # noqa: BLE001 - missing, damaged, or written by an older pakus
            search = self._changed() or self._build()
            shutil.rmtree(current, ignore_errors=True)
            self._write(search, current)
            self._search = search
        self._started_at, self._written, self._replaced = self._generation(), set(), set()
        for old in self.folder.iterdir():
            if old.name.startswith((SEARCH_PREFIX, ".tmp-search-")) and old != current and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)

    def _changed(self) -> _Search | None:
        """The generation this writer started from, with the documents it wrote made again; None
        when there is none to start from."""
        if self._started_at is None:
            return None
        try:
            search = read_search(self.folder / f"{SEARCH_PREFIX}{self._started_at}")
        except Exception:  # noqa: BLE001 - damaged: build from the table instead
            return None
        written = sorted(self._written)
        rows = []
        for first in range(0, len(written), 500):
            batch = written[first:first + 500]
            rows += self.db.execute(f"SELECT chunk_id, vector, tokens FROM chunks WHERE doc IN ({','.join('?' * len(batch))}) "
                                    "ORDER BY id", batch).fetchall()
        gone = self._replaced | {row[0] for row in rows}
        search = search.changed([i for i, chunk_id in enumerate(search.chunk_ids) if chunk_id in gone], rows, self.dimension)
        if len(search.chunk_ids) != self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]:
            return None  # not what the table holds (cannot happen, but the table is the truth)
        return search

    # --- reads -------------------------------------------------------------------------------------

    def _search_now(self) -> _Search:
        if self._search is None:
            self._search = self._load_or_build()
        return self._search

    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        search = self._search_now()
        if not search.chunk_ids:
            return []
        scores, positions = search.dense.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), min(k, len(search.chunk_ids)))
        return [(search.chunk_ids[p], float(s)) for p, s in zip(positions[0], scores[0]) if p >= 0]

    def lexical_search(self, tokens: list[str], k: int) -> list[tuple[str, float]]:
        search = self._search_now()
        if not search.chunk_ids:
            return []
        scores = search.lexical.scores(tokens)
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
        return knows_word(word, SortedList(self._search_now().lexical.words))

    def close(self) -> None:
        self._search = None

    # --- the search structures ---------------------------------------------------------------------

    def _load_or_build(self) -> _Search:
        folder = self.folder / f"{SEARCH_PREFIX}{self._generation()}"
        if _complete(folder):
            try:
                return read_search(folder)
            except Exception as exc:  # damaged: the table is the truth, build from it
                print(f"pakus: warning: the search files {folder} are damaged ({type(exc).__name__}: {exc}); "
                      "searching the catalog directly, which is slower (repair: pakus doctor --repair)", file=sys.stderr)
        return self._build()

    def _build(self) -> _Search:
        import faiss

        faiss.omp_set_num_threads(1)
        chunk_ids, vectors, token_lists = [], [], []
        for chunk_id, vector, tokens in self.db.execute("SELECT chunk_id, vector, tokens FROM chunks ORDER BY id"):
            chunk_ids.append(chunk_id)
            vectors.append(vector)
            token_lists.append(_tokens(tokens))
        dense = faiss.IndexFlatIP(self.dimension)
        dense.add(_matrix(vectors, self.dimension))
        return _Search(chunk_ids, dense, BM25.build(token_lists))

    def _write(self, search: _Search, folder: Path) -> None:
        """Into a temporary folder, then one rename; `finish` removes older generations after."""
        import faiss

        tmp = Path(tempfile.mkdtemp(prefix=".tmp-search-", dir=self.folder))
        try:
            (tmp / "chunk_ids.json").write_text(json.dumps(search.chunk_ids), encoding="utf-8")
            faiss.write_index(search.dense, str(tmp / "dense.faiss"))
            search.lexical.save(tmp / "bm25")
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


def _complete(folder: Path) -> bool:
    """Whether `folder` holds search files of this layout (an older pakus wrote bm25s's own)."""
    return (folder / "bm25" / "postings.npz").is_file()


def open_store(folder: Path, info, catalog, *, writable: bool) -> EmbeddedStore:
    dimension = int(info.embedder.get("dimension") or 384)
    return EmbeddedStore(folder, catalog.db, dimension, writable=writable, generation=catalog.generation)
