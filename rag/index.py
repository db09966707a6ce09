"""The state of a collection's index: up to date or not, and why; and rebuilding the seeds' one.

A collection is out of date when a file it holds changed or disappeared, when the folder it
mirrors gained or lost files, or when it was built with another embedder or other chunk settings.
Files are compared by size and modification time first, and only files whose time changed are
hashed (a fresh clone gives every file a new time, not new content): a check stays cheap on
thousands of files. Queries report a stale collection with the command that refreshes it; they
never rebuild it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .collections import DEFAULT, Opened, open_collection, read_info, require
from .converters.base import converters
from .errors import IndexMissingError, PakusError
from .ingest import SOURCES_FILE, _sha256, sync, walk
from .settings import Settings
from .write_access import built_with_other_settings


def refresh_command(opened: Opened, settings: Settings | None = None) -> str:
    if opened.name == DEFAULT:
        if settings is not None and not settings.seeds.is_dir():
            return f"restore the seeds folder {settings.seeds} (git checkout seeds), then pakus index build"
        return "pakus index build"
    suffix = f" -c {opened.name}"
    return f"pakus sync {opened.info.folder}{suffix}" if opened.info.folder else f"pakus add PATH...{suffix} (or pakus remove)"


def stale_reasons(opened: Opened, settings: Settings, embedder=None) -> list[str]:
    """Why the collection no longer matches its files or settings; empty when it is up to date."""
    reasons: list[str] = []
    if embedder is not None:
        reasons += built_with_other_settings(opened.info, settings, embedder)
    files = opened.catalog.files()
    root = opened.root(settings)
    for key, record in sorted(files.items()):
        # Plain strings, not Path objects: on 10,000 files, making the Paths took twice as long as
        # the stat calls themselves (0.18 s of a cold query).
        path = os.path.join(root, key) if root is not None and not os.path.isabs(key) else key
        try:
            stat = os.stat(path)
        except OSError:
            reasons.append(f"{record.source} was removed")
            continue
        if (stat.st_size, stat.st_mtime_ns) != (record.size, record.mtime_ns):
            try:
                if stat.st_size != record.size or _sha256(path) != record.doc:
                    reasons.append(f"{record.source} changed")
            except OSError:
                reasons.append(f"{record.source} cannot be read")
    if opened.info.folder:
        folder = (root / opened.info.folder) if root is not None else Path(opened.info.folder)
        if not folder.is_dir():
            reasons.append(f"the folder {opened.info.folder} is gone")
        else:
            suffixes = converters()
            for found in walk([folder], _seeds_extras if opened.name == DEFAULT else None):
                if getattr(found, "path", None) is None or found.path.suffix.lower() not in suffixes:
                    continue
                absolute = Path(os.path.abspath(found.path))
                key = absolute.relative_to(root.resolve()).as_posix() if root is not None else absolute.as_posix()
                if key not in files:
                    reasons.append(f"{key} was added")
    return reasons


def index_status(settings: Settings, embedder=None) -> dict[str, Any]:
    """What `pakus index status` prints: never raises for a missing, stale or damaged collection."""
    from .collections import directory

    status: dict[str, Any] = {"collection": settings.collection, "index_dir": str(directory(settings))}
    try:
        require(settings)
        opened = open_collection(settings)
    except PakusError as exc:
        return {**status, "state": "missing" if isinstance(exc, IndexMissingError) or "no collection" in str(exc) else "corrupt",
                "up_to_date": False, "problem": str(exc)}
    try:
        try:
            reasons = stale_reasons(opened, settings, embedder)
            documents = opened.catalog.documents()
            chunks = sum(opened.store.documents().values())
        except PakusError as exc:
            return {**status, "state": "corrupt", "up_to_date": False, "problem": str(exc)}
        return {
            **status,
            "state": "stale" if reasons else "ok",
            "up_to_date": not reasons,
            "stale_reasons": reasons,
            "refresh": refresh_command(opened, settings) if reasons else None,
            "store": opened.info.store,
            "documents": len(documents),
            "chunks": chunks,
            "model": opened.info.embedder.get("name"),
            "dimension": opened.info.embedder.get("dimension"),
            "created_at": opened.info.created_at,
            "sources": [d["source"] for d in documents],
        }
    finally:
        opened.close()


def build_seeds(settings: Settings, embedder=None, *, force: bool = False, progress: bool = False):
    """(Re)build the default collection from the seeds folder; returns the file reports."""
    if settings.collection != DEFAULT:
        raise PakusError(f"pakus index build rebuilds the seeds; for collection {settings.collection!r} use: pakus sync FOLDER -c {settings.collection}")
    if not settings.seeds.is_dir():
        raise IndexMissingError(f"no seeds folder at {settings.seeds} to build the index from; restore it (git checkout seeds), "
                                "or set PAKUS_SEEDS_DIR to the folder of the seed documents")
    return sync(settings.seeds, settings, embedder=embedder, force=force, progress=progress, skip=_seeds_extras)


def _seeds_extras(path: Path) -> bool:
    """The seeds folder's README describes the documents; it is not one of them."""
    return path.name.lower() == "readme.md" or path.name == SOURCES_FILE


def has_index(settings: Settings) -> bool:
    from .collections import MANIFEST, directory

    return read_info(directory(settings)) is not None and (directory(settings) / MANIFEST).is_file()
