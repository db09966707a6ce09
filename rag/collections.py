"""Collections: named sets of documents, each with its own index, and where they live.

- `seeds` is the default collection: the shipped documents in `seeds/`, indexed in `index/` (small,
  committed), their sources named relative to the project root.
- Every other collection is a folder `<PAKUS_HOME>/collections/<name>/`.

A collection folder holds `collection.json` (what made it: format, store, embedder, chunking, the
folder it mirrors) and the store's files. Names are checked here, so no name can reach outside
the data folder ("../x", "a/b", ".hidden").
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, InvalidInputError, PakusError

if TYPE_CHECKING:
    from .settings import Settings

DEFAULT = "seeds"
FORMAT_VERSION = 2  # 1: the single-folder index of pakus 0.1
MANIFEST = "collection.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class CollectionMissingError(PakusError):
    """No collection of that name exists."""


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"invalid collection name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


@dataclass
class CollectionInfo:
    """What `collection.json` records."""

    name: str
    store: str = "embedded"
    format_version: int = FORMAT_VERSION
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    # Sources are named relative to this folder when set ("." = the project root, for the seeds);
    # otherwise by the path the user gave. Relative names keep a committed index valid in any clone.
    root: str | None = None
    folder: str | None = None  # the folder `pakus sync` mirrors, if any (relative to root when set)
    embedder: dict[str, Any] = field(default_factory=dict)
    chunking: dict[str, Any] = field(default_factory=dict)
    cleaning_version: int = 0
    store_options: dict[str, Any] = field(default_factory=dict)  # e.g. the Milvus URI
    # Passages given to the model for this collection (`pakus collections set NAME --k N`); None:
    # pakus's default. The best k differs between collections (see settings.DEFAULT_K).
    k: int | None = None


def directory(settings: Settings, name: str | None = None) -> Path:
    """The folder of collection `name` (default: the settings' collection)."""
    name = validate_name(name or settings.collection)
    if name == DEFAULT:
        return settings.index
    return settings.home / "collections" / name


def read_info(folder: Path) -> CollectionInfo | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {k: v for k, v in data.items() if k in CollectionInfo.__dataclass_fields__}
        return CollectionInfo(**known)
    except (OSError, ValueError, TypeError) as exc:
        from .errors import IndexCorruptError

        raise IndexCorruptError(f"{path} is unreadable ({exc})") from None


def write_info(folder: Path, info: CollectionInfo) -> None:
    """Written to a temporary name and renamed: a reader never sees half a manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{MANIFEST}.tmp"
    try:
        tmp.write_text(json.dumps(asdict(info), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(folder / MANIFEST)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave half a manifest behind
        raise


def answer_k(settings: Settings, info: CollectionInfo | None) -> int:
    """Passages given to the model: the command's or environment's k, else the collection's, else the default."""
    from .settings import DEFAULT_K

    return settings.k or (info.k if info is not None else None) or DEFAULT_K


def set_k(settings: Settings, name: str, k: int | None) -> CollectionInfo:
    """Store the collection's own k (None: back to the default), taking the lock `pakus add` takes."""
    from .retrieval import validate_k
    from .write_access import write_lock

    if k is not None:
        validate_k(k)
    folder = require(settings, name)
    with write_lock(folder, name):
        opened = open_collection(settings, name, writable=True)
        try:
            opened.info.k = k
            write_info(opened.folder, opened.info)
            opened.catalog.keep_manifest(asdict(opened.info))  # a damaged collection.json keeps its k
            return opened.info
        finally:
            opened.close()


def repair_command(settings: Settings, name: str, info: CollectionInfo | None = None) -> str:
    """The command that makes a damaged collection again from its files."""
    if name == DEFAULT:
        return "pakus index build --force"
    if info is not None and info.folder:
        return f"pakus sync {info.folder} -c {name} --force"
    return f"pakus add PATH... -c {name} --force (PATH: the collection's files)"


def set_aside_damaged(folder: Path) -> list[Path]:
    """Move an unreadable catalog and manifest out of the way, renamed (kept for a look, not
    used), and drop the search files made from them: a forced rebuild starts from nothing."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moved = []
    for name in ("catalog.sqlite", "catalog.sqlite-journal", MANIFEST):
        path = folder / name
        if path.exists():
            target = folder / f"{name}.damaged-{stamp}"
            path.rename(target)
            moved.append(target)
    for search in folder.glob("search-*"):
        shutil.rmtree(search, ignore_errors=True)
    return moved


def names(settings: Settings) -> list[str]:
    """Every collection: the seeds first, then the user's in name order."""
    found = [DEFAULT] if (settings.index / MANIFEST).is_file() or settings.seeds.is_dir() else []
    base = settings.home / "collections"
    if base.is_dir():
        found += sorted(p.name for p in base.iterdir() if p.is_dir() and _NAME.fullmatch(p.name) and (p / MANIFEST).is_file())
    return found


def require(settings: Settings, name: str | None = None) -> Path:
    """The folder of an existing collection; a clear error listing the others when it is missing."""
    name = validate_name(name or settings.collection)
    folder = directory(settings, name)
    if not (folder / MANIFEST).is_file():
        if name == DEFAULT:
            from .errors import IndexMissingError

            if settings.seeds.is_dir():
                raise IndexMissingError(f"no index of the seeds at {folder}; run: pakus index build")
            # `pakus index build` needs the seeds folder: suggesting it here would fail the same way.
            raise IndexMissingError(f"no index of the seeds at {folder} and no seeds folder at {settings.seeds} to build it from; "
                                    "run pakus inside a pakus checkout (or set PAKUS_PROJECT_ROOT to one), or ask your own "
                                    "documents: pakus add PATH -c NAME, then pakus ask QUESTION -c NAME")
        others = [n for n in names(settings) if n != name]
        raise CollectionMissingError(f"no collection named {name!r}" + (f" (collections: {', '.join(others)})" if others else "")
                                     + f"; create it with: pakus add PATH -c {name}")
    return folder


def delete(settings: Settings, name: str) -> None:
    name = validate_name(name)
    if name == DEFAULT:
        raise InvalidInputError("the seeds collection ships with pakus and cannot be deleted")
    folder = require(settings, name)
    # Renamed away first, so a crash half-way leaves no half-deleted collection under its name.
    trash = folder.with_name(f".deleted-{name}-{time.time_ns()}")
    folder.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


@dataclass
class Opened:
    """An open collection: its manifest, catalog and store. Close it when done."""

    name: str
    folder: Path
    info: CollectionInfo
    catalog: Any  # rag.catalog.Catalog
    store: Any  # rag.stores.base.Store

    def root(self, settings: Settings) -> Path | None:
        """The folder sources are named relative to, if the collection has one (the seeds)."""
        if self.info.root is None:
            return None
        return settings.project_root if self.info.root == "." else Path(self.info.root)

    def close(self) -> None:
        self.store.close()
        self.catalog.close()


def open_collection(settings: Settings, name: str | None = None, *, writable: bool = False,
                    create: CollectionInfo | None = None) -> Opened:
    """Open a collection for reading (queries) or writing (add, sync, remove). With `create`, a
    missing collection is created with that manifest."""
    from .catalog import Catalog
    from .stores.base import open_store

    from .errors import IndexCorruptError

    name = validate_name(name or settings.collection)
    folder = directory(settings, name)
    try:
        info = read_info(folder)
    except IndexCorruptError as exc:
        info = _kept_info(folder)
        if info is None:
            raise IndexCorruptError(f"{exc}; the collection is damaged: rebuild it with: {repair_command(settings, name)}") from None
        if writable:
            write_info(folder, info)  # any writer repairs it
        else:
            print(f"pakus: warning: {exc}; using the copy kept in its catalog (repair: pakus doctor --repair)", file=sys.stderr)
    if info is None:
        if create is None:
            require(settings, name)  # raises the right "missing" error
        info = create
        write_info(folder, info)
    elif info.format_version != FORMAT_VERSION:
        raise IndexCorruptError(f"collection {name!r} has format {info.format_version}, this pakus reads {FORMAT_VERSION}; "
                                f"rebuild it: {repair_command(settings, name, info)}")
    try:
        catalog = Catalog(folder, writable=writable)
    except IndexCorruptError as exc:
        raise IndexCorruptError(f"{exc}; the collection is damaged: rebuild it with: {repair_command(settings, name, info)}") from None
    try:
        store = open_store(folder, info, catalog, writable=writable)
    except BaseException:
        catalog.close()
        raise
    return Opened(name, folder, info, catalog, store)


def _kept_info(folder: Path) -> CollectionInfo | None:
    from .catalog import kept_manifest

    data = kept_manifest(folder)
    if data is None:
        return None
    return CollectionInfo(**{k: v for k, v in data.items() if k in CollectionInfo.__dataclass_fields__})


def list_sources(settings: Settings, name: str | None = None) -> list[dict[str, Any]]:
    """The documents of a collection, as `pakus sources --json` prints them."""
    opened = open_collection(settings, name)
    try:
        return opened.catalog.documents()
    finally:
        opened.close()


def list_collections(settings: Settings) -> list[dict[str, Any]]:
    """Every collection with its store, document and chunk counts, as `pakus collections --json`."""
    records = []
    for name in names(settings):
        record: dict[str, Any] = {"name": name, "path": str(directory(settings, name))}
        try:
            opened = open_collection(settings, name)
        except PakusError as exc:
            records.append({**record, "problem": str(exc)})
            continue
        try:
            documents = opened.catalog.documents()
            record.update(store=opened.info.store, k=answer_k(settings, opened.info), documents=len(documents), chunks=sum(d["chunks"] for d in documents),
                          folder=opened.info.folder, created_at=opened.info.created_at)
        finally:
            opened.close()
        records.append(record)
    return records
