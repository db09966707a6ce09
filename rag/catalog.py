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
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator
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
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
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


def _connect_read_only(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    try:
        db.execute("SELECT count(*) FROM documents").fetchone()
    except BaseException:
        db.close()
        raise
    return db


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection, after restoring the last committed state if a writer was killed
    in the middle of a large batch.

    Such a writer leaves a "hot" journal (its batch had spilled into the database file before the
    commit), which must be rolled back before anyone reads, and a read-only connection may not do
    that: every query failed until the next add. Rolling back is recovery, not a rebuild: the
    database returns to exactly what the last finished batch committed.
    """
    try:
        return _connect_read_only(path)
    except sqlite3.OperationalError as exc:
        journal = path.with_name(path.name + "-journal")
        code = getattr(exc, "sqlite_errorcode", None)
        if not journal.is_file() or (code is not None and code != sqlite3.SQLITE_READONLY_ROLLBACK):
            raise
    if os.access(path.parent, os.W_OK):
        _roll_back(path)
        return _connect_read_only(path)
    # A read-only folder: roll back a private copy and read that, once per process.
    import shutil
    import sys
    import tempfile

    print(f"pakus: warning: {path} was left mid-write by a pakus process that stopped, and its folder is read-only; "
          "reading its last committed state from a temporary copy. Run any pakus command on it once with write access "
          "(e.g. pakus index status) to restore it in place", file=sys.stderr)
    copy_dir = Path(tempfile.mkdtemp(prefix="pakus-catalog-"))
    try:
        copy = copy_dir / path.name
        shutil.copyfile(path, copy)
        shutil.copyfile(journal, copy.with_name(copy.name + "-journal"))
        _roll_back(copy)
        return _connect_read_only(copy)  # the open file outlives its name on POSIX
    finally:
        shutil.rmtree(copy_dir, ignore_errors=True)


def _roll_back(path: Path) -> None:
    writer = sqlite3.connect(path, timeout=30)
    try:
        writer.execute("SELECT count(*) FROM documents").fetchone()  # SQLite rolls a hot journal back here
    finally:
        writer.close()


def kept_manifest(folder: Path) -> dict[str, Any] | None:
    """The copy of collection.json kept in the catalog of `folder`, if it can be read."""
    path = folder / FILE_NAME
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()
        finally:
            db.close()
        return json.loads(row[0]) if row else None
    except (sqlite3.Error, ValueError):
        return None


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Catalog:
    """The files and documents of one collection, in `folder/catalog.sqlite`."""

    def __init__(self, folder: Path, *, writable: bool):
        self.folder = folder
        self.writable = writable
        # Called inside each transaction just before it commits: a store outside SQLite (Milvus)
        # sends the writes it held back, one request per batch instead of one per document.
        self.before_commit: list[Callable[[], None]] = []
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
                    raise IndexCorruptError(f"{path} is missing")
                # Read-only: a query never writes, so it works on a read-only checkout too.
                self.db = _open_read_only(path)
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc):  # a writer held it for longer than the 5 s a connection waits
                from .errors import PakusError

                raise PakusError(f"{path} is locked by a pakus process that is writing it; try again in a moment") from None
            raise IndexCorruptError(f"{path} cannot be read ({exc})") from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: what happens inside is committed together, or not at all."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            for hook in self.before_commit:
                hook()
        except BaseException:
            # SQLite has already rolled back after some errors (a full disk): a second ROLLBACK
            # would fail and hide the error that says what happened.
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '1')")
        self.db.execute("COMMIT")

    def generation(self) -> int:
        """Counts committed changes; derived files (the store's snapshot) record the one they match."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def keep_manifest(self, manifest: dict[str, Any]) -> None:
        """A copy of collection.json, from which a damaged one is restored. Written only when it
        changed, and outside any batch: it does not count as a change of the documents."""
        text = json.dumps(manifest, sort_keys=True, ensure_ascii=False)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()
        if row is None or row[0] != text:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('manifest', ?)", (text,))

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
