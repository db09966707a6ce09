"""Helpers of the fault suite: a tiny project on disk, `pakus` in a real process (fake_pakus.py)
that can be stopped at a chosen point and killed, and a read-only mount that denies writes even
to root (the tests run as root, where `chmod a-w` denies nothing).

Fixtures are imported by the test modules that use them (`from faultkit import project`): a
second conftest.py here would shadow tests/conftest.py, whose fakes these tests share.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest

from conftest import ARTICLE, NOTES, PAPER, FakeEmbedder, tiny_settings_for, write_tiny_documents

HERE = Path(__file__).resolve().parent
FAKE_PAKUS = HERE / "fake_pakus.py"


class Project:
    """A project folder (seeds/, index/, a home for collections, a cache) and the environment
    that points `pakus` at it."""

    def __init__(self, root: Path):
        self.root = root
        self.home = root / "home"
        self.cache = root / "cache"
        self.docs = root / "docs"

    @property
    def seeds(self) -> Path:
        return self.root / "seeds"

    @property
    def index(self) -> Path:
        return self.root / "index"

    def collection(self, name: str) -> Path:
        return self.index if name == "seeds" else self.home / "collections" / name

    def settings(self, **changes):
        return tiny_settings_for(self.root, home=self.home, **changes)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PAKUS_", "COVERAGE"))}
        env.update(PAKUS_PROJECT_ROOT=str(self.root), PAKUS_HOME=str(self.home), PAKUS_CACHE_DIR=str(self.cache),
                   PAKUS_THREADS="1", PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
        env.update(extra)
        return env

    def pakus(self, *args: str, input: bytes | None = None, timeout: float = 60, wrap: list[str] | None = None,
              preexec_fn=None, **env: str) -> subprocess.CompletedProcess:
        """Run `pakus ARGS` to its end in a fresh process with the fakes; bytes out."""
        command = [*(wrap or []), sys.executable, str(FAKE_PAKUS), *args]
        return subprocess.run(command, input=input, capture_output=True, timeout=timeout, env=self.env(**env),
                              cwd=self.root, preexec_fn=preexec_fn)

    def start_and_stop_at(self, point: str, *args: str, timeout: float = 60, **env: str) -> subprocess.Popen:
        """Start `pakus ARGS` and return once it has reached `point` (see fake_pakus.py) and waits there."""
        ready = self.root / f".ready-{time.monotonic_ns()}"
        process = subprocess.Popen([sys.executable, str(FAKE_PAKUS), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=self.env(PAKUS_FAKE_PAUSE=point, PAKUS_FAKE_READY=str(ready), **env), cwd=self.root)
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if process.poll() is not None:
                out, err = process.communicate()
                raise AssertionError(f"pakus {' '.join(args)} ended (exit {process.returncode}) before reaching {point}: "
                                     f"{err.decode(errors='replace')}")
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"pakus {' '.join(args)} did not reach {point} in {timeout} s")
            time.sleep(0.02)
        ready.unlink()
        return process


def kill(process: subprocess.Popen) -> None:
    """SIGKILL: no handler, no cleanup, no `finally` runs, as when the machine loses power."""
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


def write_docs(folder: Path) -> Path:
    """Three small documents of one chunk or more each (the tiny paper has several)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "aid-review.md").write_text(PAPER, encoding="utf-8")
    (folder / "gwadar-port.txt").write_text(ARTICLE, encoding="utf-8")
    (folder / "cricket-notes.txt").write_bytes(NOTES.encode())
    return folder


@pytest.fixture
def project(tmp_path) -> Project:
    """A tiny project: seeds/ indexed into index/ with the fake embedder, and a docs/ folder."""
    from rag.index import build_seeds

    project = Project(tmp_path)
    write_tiny_documents(tmp_path)
    write_docs(project.docs)
    build_seeds(project.settings(), FakeEmbedder())
    return project


@pytest.fixture
def cli(project, monkeypatch):
    """`pakus` in this process (click's CliRunner) on the tiny project, with the fakes: for what
    does not need a process of its own, which is most checks (a subprocess costs a second)."""
    from click.testing import CliRunner

    import rag.bot
    import rag.embedding
    from conftest import FakeGenerator
    from rag.cli import main

    for name in list(os.environ):
        if name.startswith("PAKUS_"):
            monkeypatch.delenv(name)
    for name, value in project.env().items():
        if name.startswith("PAKUS_"):
            monkeypatch.setenv(name, value)
    generator = FakeGenerator()
    monkeypatch.setattr(rag.bot, "MiniLMEmbedder", FakeEmbedder)
    monkeypatch.setattr(rag.embedding, "MiniLMEmbedder", FakeEmbedder)
    monkeypatch.setattr(rag.bot, "load_generator", lambda settings: generator)

    def run(*args, input: bytes | str | None = None):
        args = args[0] if len(args) == 1 and isinstance(args[0], list) else args  # run("a", "b") or run(["a", "b"])
        return CliRunner().invoke(main, [str(a) for a in args], input=input)

    run.generator = generator
    return run


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes: to show a failed writer changed nothing."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def clutter(folder: Path) -> list[str]:
    """Leftovers of interrupted writes: temporary search folders, journals, half-written files."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith((".tmp-search-", ".collection.json.tmp")) or p.name.endswith(("-journal", ".partial")))


def search_sources(project: Project, query: str, collection: str = "seeds", k: int = 10) -> list[str]:
    """The sources of a search, in this process (read-only, as queries are)."""
    from rag.bot import Bot

    bot = Bot(project.settings(collection=collection), embedder=FakeEmbedder())
    try:
        return [hit.source for hit in bot.search(query, k)]
    finally:
        bot.close()


# --- read-only, for real -------------------------------------------------------------------------


@cache
def _can_mount_read_only() -> bool:
    if not shutil.which("unshare") or not shutil.which("mount"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind / /mnt 2>/dev/null || mount -t tmpfs none /mnt"],
                           capture_output=True)
    return probe.returncode == 0


def read_only_wrapper(folder: Path) -> list[str]:
    """A command prefix that runs the command with `folder` mounted read-only in a private mount
    namespace (the mount vanishes with the process): writes fail with EROFS, for root too. Skips
    the test where that is not allowed; without root, `chmod -R a-w` would do, and is used."""
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
        return []
    if not _can_mount_read_only():
        pytest.skip("cannot mount read-only here (needs CAP_SYS_ADMIN for unshare -m)")
    script = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh"]


@contextmanager
def small_disk(folder: Path, size: str = "256k"):
    """`folder` on a tmpfs of `size`: writes past it fail with ENOSPC, a real full disk."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def file_size_limit(limit: int):
    """preexec_fn: writes past `limit` bytes fail with EFBIG (Python ignores SIGXFSZ), like a full disk."""
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply
