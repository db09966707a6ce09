"""Ingestion: add, sync and remove documents of a collection, doing only the work that changed.

For each file: a size and modification time equal to the recorded ones mean unchanged (no read);
otherwise the content hash decides. Unchanged content is never converted or embedded again; the
same content under a second name is indexed once and listed under both names. New and changed
files are converted, chunked and embedded in batches, and each batch is written in one transaction
of the collection's database: a `pakus add` interrupted by Ctrl-C or a kill leaves the collection
as it was before the batch it was writing, and the next `add` carries on from there.

Only one process changes a collection at a time (a lock file, see write_access.py); a second gets
a clear message. Queries never wait for it: they read the last committed state.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .catalog import FileRecord, now
from .chunking import chunk_document
from .collections import Opened, directory, write_info
from .converters.base import convert, converters, supported_suffixes
from .errors import DocumentError, InvalidInputError
from .settings import Settings
# Opening the collection (lock, manifest, damage, disk errors) is write_access.py's job; its public
# names stay importable from here, where they were first defined.
from .write_access import (CLEANING_VERSION, CollectionBusyError, built_with_other_settings,  # noqa: F401
                           chunk_settings, disk_errors, new_info, open_for_writing, write_lock)

SOURCES_FILE = "sources.json"  # optional per-folder overrides of titles and provenance
# Chunks embedded and committed together: fewer, larger transactions. The embedder sorts them by
# length before cutting model batches of 16 (wiki articles: 3% of the tokens are padding; 6% in
# model batches of 32). Larger transactions would pad less, but a full disk in the middle of one
# of 512 left SQLite's journal behind (tests/faults).
_BATCH_CHUNKS = 256


@dataclass
class FileReport:
    """What happened to one file, as `pakus add --json` prints it."""

    source: str
    status: str  # added, updated, unchanged, removed, skipped
    reason: str | None = None  # why it was skipped, or a note ("same content as ...")
    chunks: int | None = None
    failed: bool = False  # skipped because it could not be indexed (not merely ignored)

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        status = f"{self.status}: {self.reason}" if self.status == "skipped" and self.reason else self.status
        note = f" ({self.reason})" if self.reason and self.status != "skipped" else ""
        chunks = f", {self.chunks} chunks" if self.chunks else ""
        return f"{status:<10} {self.source}{note}{chunks}"


# --- finding files ---------------------------------------------------------------------------


@dataclass
class _Found:
    path: Path  # as the user named it (joined with the names below a folder they gave)
    explicit: bool  # named directly, not found inside a folder


def walk(paths: Iterable[Path], skip: Callable[[Path], bool] | None = None) -> Iterator[_Found | FileReport]:
    """Files under `paths` (folders recursively, hidden names and `skip`ped ones left out, symlink
    loops cut), and a report for each path that does not exist."""
    for given in paths:
        if not given.exists():
            yield FileReport(str(given), "skipped", "no such file or folder", failed=True)
            continue
        if not given.is_dir():
            yield _Found(given, True)
            continue
        seen: set[tuple[int, int]] = set()
        for folder, subfolders, files in os.walk(given, followlinks=True):
            stat = os.stat(folder)
            if (stat.st_dev, stat.st_ino) in seen:  # a symlink back up the tree: already walked
                subfolders[:] = []
                continue
            seen.add((stat.st_dev, stat.st_ino))
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            for name in sorted(files):
                path = Path(folder) / name
                if not name.startswith(".") and name != SOURCES_FILE and not (skip and skip(path)):
                    yield _Found(path, False)


def read_overrides(folder: Path) -> dict[str, dict]:
    """Titles and provenance from an optional `sources.json` beside the documents."""
    path = folder / SOURCES_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DocumentError(f"cannot read {path}: {exc}; fix or remove the file") from None
    return {name: meta for name, meta in data.items() if not name.startswith("_") and isinstance(meta, dict)}


def read_document(path: Path, source: str, overrides: dict | None = None):
    """The converted Document of one file, with the title and provenance of `sources.json` applied."""
    document = convert(path, source)
    if overrides:
        document.title = overrides.get("title") or document.title
        document.metadata.update(overrides)
    return document


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- the work ------------------------------------------------------------------------------------


@dataclass
class _Pending:
    """A converted file waiting for its batch to be embedded and committed."""

    key: str
    source: str
    doc: str
    size: int
    mtime_ns: int
    status: str
    document: object = None  # None when the content is already indexed under another name
    chunks: list = field(default_factory=list)
    note: str | None = None


class Ingest:
    """One add/sync/remove run on an open, locked collection."""

    def __init__(self, opened: Opened, settings: Settings, embedder, *, force: bool = False, progress: bool = False,
                 on_report: Callable[[FileReport], None] | None = None):
        self.opened = opened
        self.settings = settings
        self.embedder = embedder
        self.force = force
        self.progress = progress
        self.on_report = on_report
        self.reports: list[FileReport] = []
        self.root = opened.root(settings)
        self.files = opened.catalog.files()
        self.sources = {record.source: key for key, record in self.files.items()}
        self._pending: list[_Pending] = []
        self._overrides: dict[Path, dict] = {}
        self._chunk_bar = _bar(None, "chunks embedded", False)  # shown while `add` runs

    def report(self, report: FileReport) -> None:
        self.reports.append(report)
        if self.on_report:
            self.on_report(report)

    def key_and_source(self, path: Path) -> tuple[str, str]:
        absolute = Path(os.path.abspath(path))
        if self.root is not None:
            try:
                relative = absolute.relative_to(self.root.resolve()).as_posix()
                return relative, relative
            except ValueError:
                pass
        key = absolute.as_posix()
        source = os.path.normpath(path).replace(os.sep, "/")
        if self.sources.get(source, key) != key:  # that name already means another file
            source = key
        return key, source

    def add(self, found: Iterable[_Found | FileReport]) -> set[str]:
        """Index new and changed files; returns the keys of every file seen."""
        seen: set[str] = set()
        items = list(found)
        bar = _bar(len(items), "files", self.progress and len(items) > 1)
        self._chunk_bar = _bar(None, "chunks embedded", self.progress and len(items) > 1, position=1)
        suffixes = converters()
        try:  # the bar is cleared even when an error ends the run, so the error gets a line of its own
            for item in items:
                bar.update(1)
                if isinstance(item, FileReport):
                    self.report(item)
                    continue
                key, source = self.key_and_source(item.path)
                seen.add(key)
                if item.path.suffix.lower() not in suffixes:
                    reason = f"unsupported format {item.path.suffix or '(no extension)'} (pakus reads {', '.join(supported_suffixes())})"
                    self.report(FileReport(source, "skipped", reason, failed=item.explicit))
                    continue
                try:
                    self._add_one(item.path, key, source)
                except DocumentError as exc:
                    self.report(FileReport(source, "skipped", str(exc), failed=True))
                if sum(len(p.chunks) for p in self._pending) >= _BATCH_CHUNKS:
                    self._commit()
            self._commit()
        finally:
            self._chunk_bar.close()
            bar.close()
        return seen

    def _add_one(self, path: Path, key: str, source: str) -> None:
        try:
            stat = path.stat()
        except OSError as exc:
            raise DocumentError(f"cannot read the file: {exc.strerror}") from None
        if not path.is_file():
            raise DocumentError("not a regular file")
        limit = self.settings.max_file_mb * 1024 * 1024
        if stat.st_size > limit:
            raise DocumentError(f"{stat.st_size / 1048576:.0f} MB is over the {self.settings.max_file_mb} MB limit "
                                "(set PAKUS_MAX_FILE_MB to allow larger files)")
        if stat.st_size == 0:
            raise DocumentError("empty file")
        known = self.files.get(key)
        if known and not self.force and (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            self.report(FileReport(source, "unchanged"))
            return
        try:
            doc = _sha256(path)
        except OSError as exc:
            raise DocumentError(f"cannot read the file: {exc.strerror}") from None
        catalog = self.opened.catalog
        status = "updated" if known else "added"
        if known and known.doc == doc and not self.force:
            with catalog.transaction():  # the same content: only the recorded time changes
                catalog.put_file(FileRecord(key, known.source, doc, stat.st_size, stat.st_mtime_ns, known.added_at))
            self.report(FileReport(known.source, "unchanged"))
            return
        twin = next((p for p in self._pending if p.doc == doc), None)
        if not self.force and (catalog.has_document(doc) or twin):
            other = twin.source if twin else next((r.source for r in self.files.values() if r.doc == doc), "another file")
            self._pending.append(_Pending(key, source, doc, stat.st_size, stat.st_mtime_ns, status, note=f"same content as {other}"))
            return
        document = read_document(path, source, self._override_for(path))
        chunks = chunk_document(document, self.embedder.count_tokens, chunk_settings(self.settings),
                                getattr(self.embedder, "token_spans", None))
        if not chunks:
            raise DocumentError("no text to index")
        self._pending.append(_Pending(key, source, doc, stat.st_size, stat.st_mtime_ns, status, document, chunks))

    def _override_for(self, path: Path) -> dict:
        folder = path.parent
        if folder not in self._overrides:
            self._overrides[folder] = read_overrides(folder)
        return self._overrides[folder].get(path.name, {})

    def _commit(self) -> None:
        """Embed the pending documents' chunks and write them, one transaction for the batch."""
        if not self._pending:
            return
        from .chunking import searchable_text

        pending, self._pending = self._pending, []
        texts = [searchable_text(c) for p in pending for c in p.chunks]
        vectors = self.embedder.embed(texts, progress=self._chunk_bar.update if self.progress else False) if texts else None
        catalog, store = self.opened.catalog, self.opened.store
        with catalog.transaction():
            offset = 0
            for item in pending:
                previous = self.files.get(item.key)
                if previous is not None and previous.doc != item.doc:
                    catalog.remove_file(item.key, store)
                if item.document is not None:
                    store.upsert(item.doc, item.chunks, vectors[offset:offset + len(item.chunks)])
                    catalog.put_document(item.doc, item.document, len(item.chunks))
                    offset += len(item.chunks)
                added_at = previous.added_at if previous else now()
                catalog.put_file(FileRecord(item.key, item.source, item.doc, item.size, item.mtime_ns, added_at))
        for item in pending:
            self.files[item.key] = FileRecord(item.key, item.source, item.doc, item.size, item.mtime_ns, now())
            self.sources[item.source] = item.key
            self.report(FileReport(item.source, item.status, item.note, len(item.chunks) or None))

    def remove(self, keys: Iterable[str]) -> None:
        catalog, store = self.opened.catalog, self.opened.store
        keys = list(keys)
        if not keys:
            return
        with catalog.transaction():
            for key in keys:
                catalog.remove_file(key, store)
        for key in keys:
            record = self.files.pop(key)
            self.report(FileReport(record.source, "removed"))


def _bar(total: int | None, unit: str, enabled: bool, position: int = 0):
    from tqdm import tqdm

    return tqdm(total=total, unit=f" {unit}", file=sys.stderr, disable=not enabled, dynamic_ncols=True, leave=False,
                position=position)


# --- the commands ----------------------------------------------------------------------------------


def _run(settings: Settings, name: str, work: Callable[[Ingest], None], *, embedder=None, create: bool = True,
         force: bool = False, progress: bool = False, on_report=None, store: str | None = None,
         store_options: dict | None = None) -> list[FileReport]:
    """Open the collection under its write lock, do `work`, and leave it fast to query."""
    from .embedding import MiniLMEmbedder

    embedder = embedder or MiniLMEmbedder()
    folder = directory(settings, name)
    with write_lock(folder, name), disk_errors(name, folder):
        info = new_info(settings, name, embedder, store or "embedded", store_options) if create else None
        opened = open_for_writing(settings, name, info, force)
        try:
            if store and opened.info.store != store:
                raise InvalidInputError(f"collection {name!r} uses the {opened.info.store} store; "
                                        "a collection's store is chosen when it is created")
            # Chunks made with another embedder or other chunk settings would not mix with new ones:
            # every file is then made again, and the manifest records the current settings.
            changed = built_with_other_settings(opened.info, settings, embedder) if create else []
            ingest = Ingest(opened, settings, embedder, force=force or bool(changed), progress=progress, on_report=on_report)
            work(ingest)
            if changed:
                fresh = new_info(settings, name, embedder)
                opened.info.embedder, opened.info.chunking = fresh.embedder, fresh.chunking
                opened.info.cleaning_version = fresh.cleaning_version
                write_info(opened.folder, opened.info)
            opened.catalog.keep_manifest(asdict(opened.info))  # a damaged collection.json is restored from it
            opened.store.finish()
            return ingest.reports
        finally:
            opened.close()


def add(paths: Iterable[Path | str], settings: Settings, *, embedder=None, force: bool = False, progress: bool = False,
        on_report=None, store: str | None = None, store_options: dict | None = None) -> list[FileReport]:
    """Index the files and folders `paths` into the settings' collection (created if needed)."""
    paths = [Path(p).expanduser() for p in paths]
    if not paths:
        raise InvalidInputError("name at least one file or folder to add")
    return _run(settings, settings.collection, lambda ingest: ingest.add(walk(paths)), embedder=embedder, force=force,
                progress=progress, on_report=on_report, store=store, store_options=store_options)


def sync(folder: Path | str, settings: Settings, *, embedder=None, force: bool = False, progress: bool = False,
         on_report=None, store: str | None = None, store_options: dict | None = None,
         skip: Callable[[Path], bool] | None = None) -> list[FileReport]:
    """Make the collection mirror `folder`: new and changed files indexed, files gone removed."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InvalidInputError(f"{folder} is not a folder; pakus sync mirrors a folder (use pakus add for single files)")

    def work(ingest: Ingest) -> None:
        seen = ingest.add(walk([folder], skip))
        if ingest.opened.info.folder is None:  # remembered, so a stale check knows what to compare
            ingest.opened.info.folder = ingest.key_and_source(folder)[0]
            write_info(ingest.opened.folder, ingest.opened.info)
        prefix = ingest.key_and_source(folder)[0].rstrip("/") + "/"
        ingest.remove(key for key in list(ingest.files) if key.startswith(prefix) and key not in seen)

    return _run(settings, settings.collection, work, embedder=embedder, force=force, progress=progress,
                on_report=on_report, store=store, store_options=store_options)


def remove(targets: Iterable[str], settings: Settings, *, embedder=None, on_report=None) -> list[FileReport]:
    """Remove documents by path (a folder removes everything under it) or by their source name."""
    targets = list(targets)
    if not targets:
        raise InvalidInputError("name at least one file, folder or source to remove")
    missing: list[FileReport] = []

    def work(ingest: Ingest) -> None:
        keys: list[str] = []
        for target in targets:
            key = ingest.sources.get(target) or ingest.key_and_source(Path(target))[0]
            matched = [key] if key in ingest.files else [k for k in ingest.files if k.startswith(key.rstrip("/") + "/")]
            if not matched:
                report = FileReport(target, "skipped", "not in the collection", failed=True)
                missing.append(report)
                ingest.report(report)
            keys += [k for k in matched if k not in keys]
        ingest.remove(keys)

    return _run(settings, settings.collection, work, embedder=embedder, create=False, on_report=on_report)
