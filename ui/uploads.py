"""Files uploaded from the chat page, and the page's operator settings.

An upload goes through the same `rag.ingest.add` as `pakus add`: the same formats, checks and size
limit (PAKUS_MAX_FILE_MB), and one report per file. Gradio keeps uploads in a temporary folder that
it empties, so each file is first copied to `<PAKUS_HOME>/uploads/<collection>/<file name>`, and the
collection's sources point at those copies (a citation can always be opened again). A second upload
of the same name replaces the file and updates its document; one that cannot be indexed leaves the
earlier copy in place.

The page's limits are the operator's, read once when `pakus ui` starts:
- PAKUS_UI_MAX_UPLOAD_MB (default 50): the largest file a visitor may upload, enforced by the
  server on its upload route (a larger upload is refused before it is stored) and again here.
- PAKUS_UI_QUEUE_SIZE (default 20): questions (and uploads) that may wait in line; a visitor beyond
  that is told the page is busy and to try again. (Up to PAKUS_UI_CONCURRENCY - 1 more wait at the
  model's door, taken from the line in order: the line cannot know ahead whether the model is one
  that answers one question at a time.)
- PAKUS_UI_CONCURRENCY (default 4): answers generated at once when the backend runs several at a
  time (the openai backend); the in-process backends answer one at a time whatever this says.
The backend and model are the operator's too (PAKUS_BACKEND, PAKUS_MODEL_PATH or `pakus ui`'s
settings); visitors choose only the collection and the number of passages.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from rag.collections import DEFAULT, validate_name
from rag.errors import ConfigError, InvalidInputError
from rag.settings import Settings


@dataclass(frozen=True)
class PageOptions:
    """What the operator sets for the chat page (PAKUS_UI_* variables)."""

    max_upload_mb: int = 50
    queue_size: int = 20
    concurrency: int = 4

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"PAKUS_UI_{f.name.upper()} must be a positive whole number, got {value!r}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> PageOptions:
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = (environ.get(f"PAKUS_UI_{f.name.upper()}") or "").strip()
            if raw:
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ConfigError(f"PAKUS_UI_{f.name.upper()} must be a positive whole number, got {raw!r}") from None
        return cls(**values)


def upload_folder(settings: Settings, collection: str) -> Path:
    """Where a collection's uploaded files are kept."""
    return (settings.home / "uploads" / validate_name(collection)).absolute()


def target_collection(current: str | None, new_name: str | None) -> str:
    """The collection an upload goes to: the new name typed, else the one open. The shipped seeds
    are not changed from the page (their index is part of the installation)."""
    name = (new_name or "").strip() or (current or "").strip()
    if not name:
        raise InvalidInputError("choose a collection, or type a name for a new one")
    validate_name(name)
    if name == DEFAULT:
        raise InvalidInputError(f"the {DEFAULT} collection ships with pakus and is not changed from this page; "
                                "type a name for a new collection to add your files to")
    return name


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


def safe_file_name(name: str) -> str:
    """A file name that stays inside the uploads folder and is not hidden."""
    name = _UNSAFE.sub("_", Path(str(name)).name).strip().lstrip(".").strip()
    if len(name) > 150:  # keep the suffix, which decides the format
        stem, suffix = os.path.splitext(name)
        name = stem[: 150 - len(suffix)] + suffix
    return name or "upload"


def uploaded(item) -> tuple[Path, str]:
    """An uploaded file as the page hands it over (a path, or gradio's file record {"path": ...,
    "orig_name": ...}): where it is now, and the name it had on the visitor's machine."""
    name = None
    if isinstance(item, dict):
        item, name = item.get("path"), item.get("orig_name")
    if not isinstance(item, (str, os.PathLike)) or not str(item):
        raise InvalidInputError("an uploaded file arrived without its contents; upload it again")
    path = Path(item)
    return path, safe_file_name(name if isinstance(name, str) and name else path.name)


def _source(path: Path) -> str:
    return os.path.normpath(path).replace(os.sep, "/")  # how rag.ingest names a file it is given


def add_uploads(files: Iterable, collection: str, settings: Settings, *, max_upload_mb: int = PageOptions.max_upload_mb,
                embedder=None, on_report: Callable | None = None) -> list:
    """Copy uploaded files into the collection's uploads folder and add them to the collection
    (created if needed); returns one `rag.ingest.FileReport` per file, each also passed to
    `on_report` as soon as it is known."""
    from rag.collections import delete, names
    from rag.ingest import FileReport, add

    collection = target_collection(collection, None)
    files = [uploaded(item) for item in (files or [])]
    if not files:
        raise InvalidInputError("choose one or more files to add")
    existed = collection in names(settings)
    folder = upload_folder(settings, collection)
    folder.mkdir(parents=True, exist_ok=True)
    limit = max_upload_mb * 1024 * 1024
    reports: list = []

    def report(item) -> None:
        reports.append(item)
        if on_report is not None:
            on_report(item)

    copies: dict[str, tuple[Path, Path | None]] = {}  # source -> (copy, the earlier file it replaced)
    try:
        for path, name in files:
            try:
                size = path.stat().st_size
            except OSError:
                report(FileReport(name, "skipped", "the upload did not arrive; upload it again", failed=True))
                continue
            if size > limit:
                report(FileReport(name, "skipped", f"{size / 1048576:.1f} MB is over this page's {max_upload_mb} MB "
                                  "upload limit (PAKUS_UI_MAX_UPLOAD_MB)", failed=True))
                continue
            copy = folder / name
            number = 2
            while _source(copy) in copies:  # two files of one name in one upload: keep both
                stem, suffix = os.path.splitext(name)
                copy, number = folder / f"{stem} ({number}){suffix}", number + 1
            earlier = None
            if copy.exists():
                earlier = folder / f".{copy.name}.previous"
                os.replace(copy, earlier)
            part = folder / f".{copy.name}.part"
            shutil.copyfile(path, part)
            os.replace(part, copy)
            copies[_source(copy)] = (copy, earlier)
        if copies:
            target = settings.with_overrides(collection=collection)
            add([copy for copy, _ in copies.values()], target, embedder=embedder, on_report=report)
    except BaseException:
        for copy, earlier in copies.values():  # nothing was indexed from them: put things back
            _restore(copy, earlier)
        copies.clear()
        raise
    finally:
        failed = {r.source for r in reports if r.failed}
        for source, (copy, earlier) in copies.items():
            if source in failed:
                _restore(copy, earlier)
            elif earlier is not None:
                earlier.unlink(missing_ok=True)
        if not existed and collection in names(settings) and not any(not r.failed for r in reports):
            delete(settings, collection)  # nothing could be added: no empty collection is left behind
        try:
            folder.rmdir()  # only when empty
        except OSError:
            pass
    return reports


def _restore(copy: Path, earlier: Path | None) -> None:
    if earlier is not None and earlier.exists():
        os.replace(earlier, copy)
    else:
        copy.unlink(missing_ok=True)
