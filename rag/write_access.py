"""Opening a collection to change it, the part every add, sync and remove shares (ingest.py does
the work in between): one process at a time (a lock file), the manifest a new collection starts
with, whether an existing one was built with other settings (then every file is made again), a
damaged catalog set aside under --force, and a full or read-only disk turned into one line.
"""

from __future__ import annotations

import fcntl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from .chunking import ChunkSettings
from .collections import DEFAULT, CollectionInfo, Opened, directory, open_collection
from .errors import IndexCorruptError, IndexWriteError, PakusError
from .settings import Settings

CLEANING_VERSION = 4  # bump when converters or chunking change what chunks contain (4: HTML blocks put back in place)


class CollectionBusyError(PakusError):
    """Another process is changing the collection."""


def chunk_settings(settings: Settings) -> ChunkSettings:
    return ChunkSettings(max_tokens=settings.chunk_max_tokens, overlap_sentences=settings.chunk_overlap_sentences)


def new_info(settings: Settings, name: str, embedder, store: str = "embedded", store_options: dict | None = None) -> CollectionInfo:
    return CollectionInfo(name=name, store=store, root="." if name == DEFAULT else None,
                          folder="seeds" if name == DEFAULT else None, embedder=embedder.fingerprint(),
                          chunking=asdict(chunk_settings(settings)), cleaning_version=CLEANING_VERSION,
                          store_options=store_options or {})


def built_with_other_settings(info: CollectionInfo, settings: Settings, embedder) -> list[str]:
    """Why the collection's chunks or vectors would differ if it were built now; empty if not."""
    reasons = []
    current = embedder.fingerprint()
    if (info.embedder.get("name"), info.embedder.get("weights_sha256")) != (current["name"], current["weights_sha256"]):
        reasons.append("the embedder model changed")
    if info.chunking != asdict(chunk_settings(settings)):
        reasons.append(f"chunk settings changed ({info.chunking} -> {asdict(chunk_settings(settings))})")
    if info.cleaning_version != CLEANING_VERSION:
        reasons.append(f"document cleaning changed (version {info.cleaning_version} -> {CLEANING_VERSION})")
    return reasons


@contextmanager
def write_lock(folder: Path, name: str) -> Iterator[None]:
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_path = folder.parent / f".{folder.name}.lock"
    try:
        handle = open(lock_path, "a")
    except OSError as exc:
        raise PakusError(f"cannot change collection {name!r}: {lock_path.parent} is not writable ({exc.strerror})") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CollectionBusyError(f"collection {name!r} is being changed by another pakus process; "
                                      "try again when it has finished") from None
        yield


def open_for_writing(settings: Settings, name: str, info: CollectionInfo | None, force: bool) -> Opened:
    """The collection, open for writing. With --force, a catalog that cannot be read (or fails
    SQLite's quick check) is set aside and the collection is made again from nothing: without it,
    a damaged catalog could not be repaired by any command."""
    from .collections import set_aside_damaged

    try:
        opened = open_collection(settings, name, writable=True, create=info)
    except IndexCorruptError:
        if not (force and info is not None):
            raise
        opened = None
    else:
        if not force or _quick_check(opened):
            return opened
        opened.close()
    moved = set_aside_damaged(directory(settings, name))
    print(f"pakus: the damaged index of collection {name!r} was set aside ({', '.join(p.name for p in moved)}); "
          "making it again from the files", file=sys.stderr)
    return open_collection(settings, name, writable=True, create=info)


def _quick_check(opened: Opened) -> bool:
    import sqlite3

    try:
        return opened.catalog.db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    except sqlite3.DatabaseError:
        return False


@contextmanager
def disk_errors(name: str, folder: Path) -> Iterator[None]:
    """A full disk, a file-size limit or a read-only folder while writing: one line naming the
    cause, instead of SQLite's "disk I/O error". Every batch is one transaction, so the collection
    keeps what was committed before, and the next run carries on from there."""
    import errno
    import sqlite3

    try:
        yield
    except (sqlite3.OperationalError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES):
            raise
        if isinstance(exc, sqlite3.OperationalError) and not any(
                words in str(exc) for words in ("disk", "full", "readonly", "read-only", "unable to open")):
            raise
        cause = getattr(exc, "strerror", None) or str(exc)
        raise IndexWriteError(f"cannot write collection {name!r} in {folder} ({cause}): free some disk space or fix its "
                              "permissions, then run the command again; what was committed before is kept and the "
                              "next run carries on from there") from None
