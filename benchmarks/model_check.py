"""What checking the packaged model costs on a start: the sampled-block hash that every load runs,
cold (the file dropped from the page cache) and warm, against the full sha256 that `pakus doctor`
runs. Prints a table, or one JSON object with --json.

    python benchmarks/model_check.py [--runs 9] [--json]

A cold figure needs a file nobody has mapped (a running llama.cpp keeps the model's pages in
memory, and the kernel will not drop them): the model is copied next to the cache once, and the
copy is dropped with posix_fadvise before each cold run, then deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

from rag.generators import model_files
from rag.settings import Settings


def drop(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed(function, path: Path, cold: bool) -> float:
    if cold:
        drop(path)
    started = time.perf_counter()
    function(path)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    model = model_files.default_gguf_path(Settings.from_env())
    copy = model.with_name(model.name + ".benchmark-copy")
    shutil.copyfile(model, copy)
    try:
        rows = {}
        for name, function, runs in (("sampled blocks (every start)", model_files._sampled_digest, args.runs),
                                     ("full sha256 (pakus doctor)", model_files._sha256_file, 2)):
            cold = [timed(function, copy, True) for _ in range(runs)]
            warm = [timed(function, copy, False) for _ in range(runs)]
            rows[name] = {"cold_ms": round(statistics.median(cold) * 1000, 1), "cold_max_ms": round(max(cold) * 1000, 1),
                          "warm_ms": round(statistics.median(warm) * 1000, 1)}
    finally:
        copy.unlink(missing_ok=True)
    if args.json:
        print(json.dumps({"model": str(model), "size": model.stat().st_size, "checks": rows}, indent=2))
        return
    print(f"model: {model} ({model.stat().st_size / 1e9:.2f} GB)")
    print(f"{'check':<32} {'cold (median)':>14} {'cold (max)':>11} {'warm':>9}")
    for name, row in rows.items():
        print(f"{name:<32} {row['cold_ms']:>11.1f} ms {row['cold_max_ms']:>8.1f} ms {row['warm_ms']:>6.1f} ms")


if __name__ == "__main__":
    main()
