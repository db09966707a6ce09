"""The Milvus store: a collection's chunks, vectors and lexical index in a Milvus collection, through
pymilvus's `MilvusClient`. Which Milvus a collection uses (a Milvus Lite file or a server), and
reaching it, is milvus_client.py's job; this module reads and writes the rows.

One Milvus collection per pakus collection, `pakus_<name>_<8 hex>` (named at creation, recorded in
the catalog's `meta` table; the suffix keeps two pakus homes on one server apart). Its rows:
`pk` (chunk id and version), `chunk_id`, `doc` (the document key), `version`, `record` (the
Chunk's JSON), `dense` (FLOAT_VECTOR, inner product, FLAT: exact, the same top k as the embedded
store's flat FAISS index), `tokens` (the chunk's text tokenised by `rag.lexical.tokenize`, joined
by spaces; Milvus's analyzer only splits it on whitespace, so both stores rank the same words) and
`lexical` (SPARSE_FLOAT_VECTOR made from `tokens` by Milvus's own BM25 function, with the embedded
store's k1 and b). Milvus's BM25 multiplies every score by k1 + 1, which bm25s leaves out; scores
are divided by it, so both stores give the same numbers.

Milvus is not part of the catalog's SQLite transaction, so writes are ordered to make a crash
harmless. The truth is in SQLite, committed with the catalog: `milvus_documents` (document ->
the version of its rows, chunk count, word counts), `milvus_vocabulary` (word -> chunks holding
it, for `knows_word`: Milvus has no vocabulary API) and `milvus_garbage` (rows to remove).
- Rows are written with version = the catalog generation their transaction will commit as, and
  a reader shows a row only when its document is committed at that version. Rows of a transaction
  that never committed (a killed `pakus add`) are never seen, and are removed at the next write.
- Nothing committed is removed from Milvus before the removal is committed: `delete` and the
  replaced rows of `upsert` and `rename` become `milvus_garbage` entries in the transaction, and
  are deleted from Milvus once committed (before the next write, and in `finish`). A rolled-back
  removal leaves every row of the document in place.
So a crash at any point leaves Milvus showing exactly the committed catalog, and the next `pakus
add` carries on. The price: until `finish` (or the next write) removes them, replaced rows still
count in Milvus's BM25 statistics, so lexical scores are exact only after a command finishes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..chunking import searchable_text
from ..errors import IndexCorruptError
from ..lexical import tokenize
from ..schema import Chunk
from .base import knows_word
# Reaching Milvus moved to milvus_client.py; its public names stay importable from here.
from .milvus_client import (BM25_B, BM25_K1, CONNECT_TIMEOUT, DEFAULT_FILE, ENV_TIMEOUT,  # noqa: F401
                            ENV_TOKEN, LITE_START_TIMEOUT, MAX_TOKENS_BYTES, SERVER_SCHEMES, collection_name,
                            collection_schema, connect, is_server, one_line, options_from_env)
from .milvus_lite import ENV_URI, MilvusError

# One request's deadline. A float on purpose: pymilvus turns a whole number into a time budget for
# retrying any failure (60 s of retries of a malformed request); with a float it tries RETRIES times.
REQUEST_TIMEOUT = 60.0
RETRIES = 3
MAX_LIMIT = 16384  # Milvus's largest top k and query window
_BATCH = 500
_FOUND_KEPT = 2000  # search rows kept for `chunks` (a search returns at most a few hundred)
_META_KEY = "milvus_collection"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS milvus_documents (
    doc TEXT PRIMARY KEY, version INTEGER NOT NULL, chunks INTEGER NOT NULL, words TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS milvus_vocabulary (word TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS milvus_garbage (doc TEXT NOT NULL, below INTEGER NOT NULL);
"""


class _Vocabulary:
    """SortedWords over the `milvus_vocabulary` table (its primary key is the sorted order)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def ceiling(self, word: str) -> str | None:
        row = self.db.execute("SELECT word FROM milvus_vocabulary WHERE word >= ? ORDER BY word LIMIT 1", (word,)).fetchone()
        return row[0] if row else None

    def between(self, low: str, high: str) -> list[str]:
        return [w for (w,) in self.db.execute("SELECT word FROM milvus_vocabulary WHERE word >= ? AND word < ?", (low, high))]


def _text(value: str) -> str:
    """A string literal in a Milvus filter expression."""
    return json.dumps(str(value))


def _tokens(chunk: Chunk) -> str:
    text = " ".join(tokenize(searchable_text(chunk)))
    if len(text.encode()) > MAX_TOKENS_BYTES:  # never for a chunk of a few hundred tokens
        text = text.encode()[:MAX_TOKENS_BYTES].decode(errors="ignore").rsplit(" ", 1)[0]
    return text


class MilvusStore:
    name = "milvus"

    def __init__(self, client, collection: str, uri: str, db: sqlite3.Connection, dimension: int, *,
                 writable: bool, generation, release=None):
        self.client = client
        self.collection = collection
        self.uri = uri
        self.db = db
        self.dimension = dimension
        self.writable = writable
        self._generation = generation
        self._release = release
        self._vocabulary = _Vocabulary(db)
        self._wrote = False  # since the last flush
        # Rows of the open transaction not yet sent: Milvus Lite spends about 20 ms on any write
        # request, so one per document made 10,000 documents cost 200 s of requests alone. They
        # are sent when the catalog is about to commit (`send`), or before anything reads or
        # deletes rows, so that Milvus never lags behind what this store has accepted.
        self._unsent: list[dict] = []
        # The rows the last searches returned, records included: retrieval reads the chunks of the
        # candidates it just found, and taking them from the search's reply saves a query (10 ms
        # of the 39 ms a warm search took on 27,000 chunks in Milvus Lite).
        self._found: dict[str, dict] = {}

    # --- Milvus calls ------------------------------------------------------------------------------

    @contextmanager
    def _milvus(self, action: str) -> Iterator[None]:
        """Any failure of a Milvus call becomes one line naming the URI."""
        from pymilvus.exceptions import MilvusException

        try:
            yield
        except (MilvusException, OSError) as exc:
            raise MilvusError(f"Milvus at {self.uri}: {action} failed: {one_line(exc)}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("grpc"):
                raise MilvusError(f"Milvus at {self.uri}: {action} failed: {one_line(exc)}") from None
            raise

    def _delete_rows(self, expression: str) -> None:
        self.send()
        with self._milvus("delete"):
            self.client.delete(self.collection, filter=expression, timeout=REQUEST_TIMEOUT, retry_times=RETRIES)

    # --- writes (inside the catalog's transaction) ---------------------------------------------

    def _document(self, doc: str) -> tuple[int, dict[str, int]] | None:
        row = self.db.execute("SELECT version, words FROM milvus_documents WHERE doc = ?", (doc,)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def _count_words(self, words: dict[str, int], sign: int) -> None:
        if sign > 0:
            self.db.executemany("INSERT INTO milvus_vocabulary VALUES (?, ?) ON CONFLICT(word) DO UPDATE SET count = count + excluded.count",
                                words.items())
        else:
            self.db.executemany("UPDATE milvus_vocabulary SET count = count - ? WHERE word = ?", [(n, w) for w, n in words.items()])
            self.db.executemany("DELETE FROM milvus_vocabulary WHERE word = ? AND count <= 0", [(w,) for w in words])

    def _retire(self, doc: str, previous: int, version: int) -> None:
        """The rows of `doc` older than `version` go once this transaction commits; rows this same
        transaction wrote (never committed) go now."""
        if previous >= version:
            self._delete_rows(f"doc == {_text(doc)} and version >= {int(version)}")
        self.db.execute("INSERT INTO milvus_garbage VALUES (?, ?)", (doc, version))

    def _write(self, rows: list[dict]) -> None:
        self._unsent += rows
        if len(self._unsent) >= _BATCH:
            self.send()

    def send(self) -> None:
        """Write the rows held back, in requests of up to _BATCH rows."""
        rows, self._unsent = self._unsent, []
        for start in range(0, len(rows), _BATCH):
            self._wrote = True
            with self._milvus("upsert"):
                self.client.upsert(self.collection, rows[start:start + _BATCH], timeout=REQUEST_TIMEOUT, retry_times=RETRIES)

    def upsert(self, doc: str, chunks: list[Chunk], vectors: np.ndarray) -> None:
        self._collect()
        version = self._generation() + 1  # what this transaction commits as
        known = self._document(doc)
        if known:
            self._count_words(known[1], -1)
            self._retire(doc, known[0], version)
        vectors = np.asarray(vectors, dtype=np.float32)
        rows, words = [], Counter()
        for chunk, vector in zip(chunks, vectors):
            tokens = _tokens(chunk)
            words.update(set(tokens.split()))
            rows.append({"pk": f"{chunk.chunk_id}:{version}", "chunk_id": chunk.chunk_id, "doc": doc, "version": version,
                         "record": chunk.to_dict(), "dense": vector.tolist(), "tokens": tokens})
        self._write(rows)
        self.db.execute("INSERT OR REPLACE INTO milvus_documents VALUES (?, ?, ?, ?)",
                        (doc, version, len(rows), json.dumps(words, ensure_ascii=False)))
        self._count_words(words, +1)

    def delete(self, doc: str) -> None:
        known = self._document(doc)
        if known is None:
            return
        self._collect()
        self._count_words(known[1], -1)
        self._retire(doc, known[0], self._generation() + 1)
        self.db.execute("DELETE FROM milvus_documents WHERE doc = ?", (doc,))

    def rename(self, doc: str, source: str) -> None:
        """Milvus cannot change a field in place: the document's rows are written again."""
        known = self._document(doc)
        if known is None:
            return
        self._collect()
        version = self._generation() + 1
        rows = []
        for row in self._query(f"doc == {_text(doc)} and version == {int(known[0])}", ["chunk_id", "record", "dense", "tokens"]):
            rows.append({"pk": f"{row['chunk_id']}:{version}", "chunk_id": row["chunk_id"], "doc": doc, "version": version,
                         "record": {**row["record"], "source": source}, "dense": [float(x) for x in row["dense"]],
                         "tokens": row["tokens"]})
        if known[0] < version:
            self.db.execute("INSERT INTO milvus_garbage VALUES (?, ?)", (doc, version))
        self._write(rows)
        self.db.execute("UPDATE milvus_documents SET version = ? WHERE doc = ?", (version, doc))

    def finish(self) -> None:
        """Remove from Milvus what the committed catalog no longer holds (and any rows of an
        interrupted transaction), so BM25's statistics count only the live rows; then seal what
        was written, so that it is indexed: on 20,000 rows a dense search took 16 ms while they
        were still growing, 7 ms once sealed and indexed (the flush itself took milliseconds)."""
        if not self.writable or self.db.in_transaction:
            return
        self._unsent.clear()  # outside a transaction, rows still unsent belong to one that rolled back
        self._sweep()
        self._collect()
        if self._wrote:
            with self._milvus("flush"):
                self.client.flush(self.collection, timeout=REQUEST_TIMEOUT, retry_times=RETRIES)
            self._wrote = False

    def _sweep(self) -> None:
        """Rows written by transactions that never committed: versions above the generation."""
        self._delete_rows(f"version > {int(self._generation())}")

    def _collect(self) -> None:
        """Delete the rows that committed transactions retired. Entries of the transaction still
        open (below > generation) wait: their rows are still the committed state."""
        if not self.writable:
            return
        generation = self._generation()
        entries = self.db.execute("SELECT rowid, doc, below FROM milvus_garbage WHERE below <= ?", (generation,)).fetchall()
        for start in range(0, len(entries), 100):
            batch = entries[start:start + 100]
            self._delete_rows(" or ".join(f"(doc == {_text(doc)} and version < {int(below)})" for _, doc, below in batch))
            self.db.executemany("DELETE FROM milvus_garbage WHERE rowid = ?", [(rowid,) for rowid, _, _ in batch])

    # --- reads -------------------------------------------------------------------------------------

    def _committed(self, docs: set[str]) -> dict[str, int]:
        docs = list(docs)
        found: dict[str, int] = {}
        for start in range(0, len(docs), _BATCH):
            batch = docs[start:start + _BATCH]
            found.update(self.db.execute(f"SELECT doc, version FROM milvus_documents WHERE doc IN ({','.join('?' * len(batch))})", batch))
        return found

    def _visible(self, rows: list[dict]) -> list[dict]:
        """The rows of the committed documents at their committed versions."""
        committed = self._committed({r["doc"] for r in rows})
        return [r for r in rows if committed.get(r["doc"]) == r["version"]]

    def _query(self, expression: str, fields: list[str]) -> list[dict]:
        self.send()
        with self._milvus("query"):
            iterator = self.client.query_iterator(self.collection, batch_size=1000, filter=expression, output_fields=fields,
                                                  timeout=REQUEST_TIMEOUT, retry_times=RETRIES)
            rows = []
            try:
                while batch := iterator.next():
                    rows += batch
            finally:
                iterator.close()
            return rows

    def _search(self, data, field: str, metric: str, k: int) -> list[tuple[str, float]]:
        if k <= 0:
            return []
        self.send()
        generation = self._generation()
        limit = min(k, MAX_LIMIT)
        while True:
            with self._milvus("search"):
                found = self.client.search(self.collection, data=[data], anns_field=field, limit=limit,
                                           filter=f"version <= {int(generation)}", search_params={"metric_type": metric},
                                           output_fields=["chunk_id", "doc", "version", "record"], timeout=REQUEST_TIMEOUT,
                                           retry_times=RETRIES)[0]
            hits = [{**hit["entity"], "score": float(hit["distance"])} for hit in found]
            visible = self._visible(hits)
            if len(self._found) > _FOUND_KEPT:
                self._found.clear()
            self._found.update((h["chunk_id"], h) for h in visible)
            # Rows not yet removed (replaced, or of an interrupted write) can take places: ask for more.
            if len(visible) >= k or len(hits) < limit or limit >= MAX_LIMIT:
                return [(h["chunk_id"], h["score"]) for h in visible[:k]]
            limit = min(limit * 4, MAX_LIMIT)

    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        if not self.db.execute("SELECT 1 FROM milvus_documents LIMIT 1").fetchone():
            return []
        return self._search(np.asarray(vector, dtype=np.float32).reshape(-1).tolist(), "dense", "IP", k)

    def lexical_search(self, tokens: list[str], k: int) -> list[tuple[str, float]]:
        known = {w for (w,) in self.db.execute(
            f"SELECT word FROM milvus_vocabulary WHERE word IN ({','.join('?' * len(set(tokens)))})", list(set(tokens)))} if tokens else set()
        tokens = [t for t in tokens if t in known]
        if not tokens:
            return []
        return [(chunk_id, score / (BM25_K1 + 1)) for chunk_id, score in self._search(" ".join(tokens), "lexical", "BM25", k)
                if score > 0]

    def chunks(self, chunk_ids: list[str]) -> dict[str, Chunk]:
        # Rows a search returned are still the committed ones if their document's version is.
        found = {row["chunk_id"]: Chunk.from_dict(row["record"])
                 for row in self._visible([self._found[i] for i in chunk_ids if i in self._found])}
        ids = [i for i in dict.fromkeys(chunk_ids) if i not in found]
        self.send()
        generation = self._generation()
        for start in range(0, len(ids), _BATCH):
            with self._milvus("query"):
                batch = ids[start:start + _BATCH]
                rows = self.client.query(self.collection, filter=f"chunk_id in [{', '.join(map(_text, batch))}] and version <= {int(generation)}",
                                         output_fields=["chunk_id", "doc", "version", "record"], timeout=REQUEST_TIMEOUT,
                                         retry_times=RETRIES)
            for row in self._visible(list(rows)):
                found[row["chunk_id"]] = Chunk.from_dict(row["record"])
        return found

    def documents(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT doc, chunks FROM milvus_documents"))

    def knows_word(self, word: str) -> bool:
        return knows_word(word, self._vocabulary)

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # already gone: nothing to release
                pass
        if self._release is not None:
            release, self._release = self._release, None
            release()


# --- opening ---------------------------------------------------------------------------------------


def open_store(folder: Path, info, catalog, *, writable: bool) -> MilvusStore:
    dimension = int(info.embedder.get("dimension") or 384)
    uri = str((info.store_options or {}).get("uri") or os.environ.get(ENV_URI, "").strip() or DEFAULT_FILE)
    db = catalog.db
    if writable:
        db.executescript(_SCHEMA)
        db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (_META_KEY, collection_name(info.name)))
    row = db.execute("SELECT value FROM meta WHERE key = ?", (_META_KEY,)).fetchone()
    if row is None:
        raise IndexCorruptError(f"collection {info.name!r} has no Milvus collection recorded; rebuild it: pakus add PATH -c {info.name} --force")
    client, release = connect(folder, uri, writable=writable)
    store = MilvusStore(client, row[0], uri, db, dimension, writable=writable, generation=catalog.generation, release=release)
    if writable:
        catalog.before_commit.append(store.send)
    try:
        with store._milvus("open the collection"):
            exists = client.has_collection(store.collection, timeout=REQUEST_TIMEOUT, retry_times=RETRIES)
            if not exists and writable:
                schema, index = collection_schema(client, dimension)
                client.create_collection(store.collection, schema=schema, consistency_level="Strong", timeout=REQUEST_TIMEOUT,
                                         retry_times=RETRIES)
                # Without waiting: an empty collection's indexes are built at once, and pymilvus polls
                # each one's state every 0.5 s (2 s of 2.2 s to create a collection).
                client.create_index(store.collection, index, sync=False, timeout=REQUEST_TIMEOUT, retry_times=RETRIES)
            elif not exists:
                raise IndexCorruptError(f"the Milvus collection {store.collection} of {info.name!r} is missing at {uri}; "
                                        f"rebuild it: pakus add PATH -c {info.name} --force")
            if str(client.get_load_state(store.collection, timeout=REQUEST_TIMEOUT, retry_times=RETRIES).get("state")) != "Loaded":
                client.load_collection(store.collection, timeout=REQUEST_TIMEOUT, retry_times=RETRIES)
        if writable:
            store.finish()  # what an interrupted write left behind
    except BaseException:
        store.close()
        raise
    return store
