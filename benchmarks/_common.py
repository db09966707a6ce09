"""Shared helpers for the benchmark scripts: timing children, medians, tables.

The scripts run from a checkout (`python benchmarks/speed.py`), so the project root is put on the
path here rather than requiring `pip install -e .` first.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GIB = 1024**3


@dataclass
class Child:
    """One finished subprocess: wall time, its own peak memory, exit status and output."""

    wall: float
    max_rss: int  # bytes, of this child alone (os.wait4), not of every child so far
    returncode: int
    stdout: str
    stderr: str
    cpu: float = 0.0  # user + system seconds of this child alone


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # Children import `rag` from this checkout even when the package is not installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run_child(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 900,
              show_stderr: bool = False) -> Child:
    """Run a command to completion and measure it.

    os.wait4 gives the resource usage of exactly this child; getrusage(RUSAGE_CHILDREN) would
    report the largest of all children so far, mixing backends together. With `show_stderr` the
    child's progress bars go straight to the terminal (and are not kept).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(cmd, stdout=out, stderr=None if show_stderr else err,
                                   env=env or child_env(), cwd=ROOT)
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # already reaped; Popen must not wait
        out.seek(0)
        err.seek(0)
        return Child(wall, usage.ru_maxrss * 1024, process.returncode,
                     out.read().decode(errors="replace"), err.read().decode(errors="replace"), usage.ru_utime + usage.ru_stime)


def pakus_command() -> tuple[list[str], str]:
    """The `pakus` console script of this environment, else an equivalent `python -c` line."""
    script = Path(sys.executable).parent / "pakus"
    if script.exists():
        return [str(script)], str(script)
    found = shutil.which("pakus")
    if found:
        return [found], found
    return [sys.executable, "-c", "import sys; from rag.cli import main; sys.exit(main())"], "python -c 'rag.cli.main()'"


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def run_worker(script: Path, name: str, *args: str, env: dict[str, str] | None = None,
               timeout: float = 900, show_stderr: bool = False) -> tuple[dict, Child]:
    """Run `script --worker name ...` in a fresh process; it writes its result as JSON to a file."""
    with tempfile.TemporaryDirectory() as scratch:
        result_path = Path(scratch) / "result.json"
        child = run_child([sys.executable, str(script), "--worker", name, "--out", str(result_path), *args],
                          env=env, timeout=timeout, show_stderr=show_stderr)
        if child.returncode != 0 or not result_path.exists():
            tail = "\n".join(child.stderr.strip().splitlines()[-15:]) or "(its messages are above)"
            raise RuntimeError(f"worker {name} {' '.join(args)} failed (exit {child.returncode}):\n{tail}")
        return json.loads(result_path.read_text()), child


def table(rows: list[list[str]], header: list[str]) -> str:
    """Plain text table, first column left-aligned, the rest right-aligned."""
    cells = [header] + rows
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    lines = []
    for number, row in enumerate(cells):
        parts = [str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(value, pattern: str = "{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def machine() -> dict:
    """What the numbers were measured on; the load average tells whether the cores were shared."""
    import platform

    return {
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
