"""The catalog of a collection: which files it holds, and each document's clean text.

One SQLite database per collection (`catalog.sqlite`), so that adding or removing a document is a
single transaction: an interrupted `pakus add` leaves the collection as it was before that file.
The embedded store keeps its chunks in the same database and the same transaction.

- `documents`: one row per distinct content (sha256): title, format, pages, metadata, and the clean
  text with its offset map, so passages and citations can be mapped back to the file without
  converting it again (a PDF takes seconds to convert; a query must not).
- `files`: one row per path. Two files with the same content share one document: it is indexed
  once and both names are listed.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import IndexCorruptError
from .schema import Document

FILE_NAME = "catalog.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT NOT NULL, format TEXT NOT NULL,
    pages INTEGER, chunks INTEGER NOT NULL, metadata TEXT NOT NULL, text TEXT NOT NULL,
    offsets BLOB NOT NULL, sections TEXT NOT NULL, page_starts TEXT NOT NULL, added_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, source TEXT NOT NULL, doc TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, added_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS files_doc ON files(doc);
"""


@dataclass
class FileRecord:
    path: str  # the key: relative to the collection's root when it has one, else absolute
    source: str  # the name shown and cited
    doc: str  # sha256 of the content
    size: int
    mtime_ns: int
    added_at: str


def _pack_offsets(offsets: list[int]) -> bytes:
    """Offsets grow mostly by one: stored as compressed differences (a few bytes per page)."""
    import numpy as np

    array = np.asarray(offsets, dtype=np.int64)
    deltas = np.diff(array, prepend=0).astype(np.int32)
    return zlib.compress(deltas.tobytes(), 6)


def _unpack_offsets(blob: bytes) -> list[int]:
    import numpy as np

    return np.cumsum(np.frombuffer(zlib.decompress(blob), dtype=np.int32), dtype=np.int64).tolist()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Catalog:
    """The files and documents of one collection, in `folder/catalog.sqlite`."""

    def __init__(self, folder: Path, *, writable: bool):
        self.folder = folder
        self.writable = writable
        path = folder / FILE_NAME
        try:
            if writable:
                folder.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                self.db.execute("PRAGMA journal_mode=DELETE")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.executescript(_SCHEMA)
            else:
                if not path.is_file():
                    raise IndexCorruptError(f"{path} is missing; the collection is incomplete (run: pakus doctor)")
                # Read-only: a query never writes, so it works on a read-only checkout too.
                self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
                self.db.execute("SELECT count(*) FROM documents").fetchone()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{path} cannot be read ({exc}); the collection is damaged (run: pakus doctor)") from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: what happens inside is committed together, or not at all."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '1')")
        self.db.execute("COMMIT")

    def generation(self) -> int:
        """Counts committed changes; derived files (the store's snapshot) record the one they match."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    # --- files ---------------------------------------------------------------------------------

    def files(self) -> dict[str, FileRecord]:
        return {row[0]: FileRecord(*row) for row in self.db.execute("SELECT path, source, doc, size, mtime_ns, added_at FROM files")}

    def file(self, path: str) -> FileRecord | None:
        row = self.db.execute("SELECT path, source, doc, size, mtime_ns, added_at FROM files WHERE path = ?", (path,)).fetchone()
        return FileRecord(*row) if row else None

    def put_file(self, record: FileRecord) -> None:
        self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                        (record.path, record.source, record.doc, record.size, record.mtime_ns, record.added_at))

    def remove_file(self, path: str, store) -> None:
        """Forget a path. Its document goes too (from the store as well) when no other file holds
        that content; otherwise it stays, shown and cited under the other file's name."""
        record = self.file(path)
        if record is None:
            return
        self.db.execute("DELETE FROM files WHERE path = ?", (path,))
        remaining = self.db.execute("SELECT source FROM files WHERE doc = ? ORDER BY path LIMIT 1", (record.doc,)).fetchone()
        if remaining is None:
            self.db.execute("DELETE FROM documents WHERE doc = ?", (record.doc,))
            store.delete(record.doc)
        elif self.db.execute("UPDATE documents SET source = ? WHERE doc = ? AND source = ?",
                             (remaining[0], record.doc, record.source)).rowcount:
            store.rename(record.doc, remaining[0])

    # --- documents -------------------------------------------------------------------------------

    def has_document(self, doc: str) -> bool:
        return self.db.execute("SELECT 1 FROM documents WHERE doc = ?", (doc,)).fetchone() is not None

    def put_document(self, doc: str, document: Document, chunks: int) -> None:
        metadata = dict(document.metadata)
        self.db.execute(
            "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc, document.source, document.title, metadata.get("format", ""), metadata.get("pages"), chunks,
             json.dumps(metadata, ensure_ascii=False, default=str), document.text, _pack_offsets(document.offsets),
             json.dumps(document.sections, ensure_ascii=False), json.dumps(document.page_starts), now()))

    def document(self, source: str) -> Document | None:
        """The clean document shown under `source` (what chunks and hits name)."""
        row = self.db.execute("SELECT source, title, text, offsets, sections, metadata, page_starts FROM documents WHERE source = ?",
                              (source,)).fetchone()
        if row is None:
            return None
        source, title, text, offsets, sections, metadata, page_starts = row
        return Document(source=source, title=title, text=text, offsets=_unpack_offsets(offsets),
                        sections=[tuple(s) for s in json.loads(sections)], metadata=json.loads(metadata),
                        page_starts=json.loads(page_starts))

    def documents(self) -> list[dict[str, Any]]:
        """One record per document, as `pakus sources --json` prints them."""
        names: dict[str, list[str]] = {}
        for source, doc in self.db.execute("SELECT source, doc FROM files ORDER BY source"):
            names.setdefault(doc, []).append(source)
        records = []
        for doc, source, title, fmt, pages, chunks, metadata, added_at in self.db.execute(
                "SELECT doc, source, title, format, pages, chunks, metadata, added_at FROM documents ORDER BY source"):
            meta = json.loads(metadata)
            records.append({
                "source": source, "title": title, "format": fmt, "pages": pages, "chunks": chunks, "sha256": doc,
                "added_at": added_at, "authors": meta.get("authors"), "date": meta.get("date"),
                "also_at": [name for name in names.get(doc, []) if name != source],
            })
        return records

    def metadata_by_source(self) -> dict[str, dict]:
        """Per document shown, its title and metadata (retrieval prefers a document named in a question)."""
        return {source: {"title": title, **json.loads(metadata)}
                for source, title, metadata in self.db.execute("SELECT source, title, metadata FROM documents")}

    def close(self) -> None:
        self.db.close()
