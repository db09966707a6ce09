"""Scale: issue 10's figures for a collection of many documents, per store, with real `pakus`
processes (the build, the second add, adding and removing one file, cold asks), and one worker
process for the warm figures (search latency, evidence recall, FAISS threads).

    python benchmarks/corpora.py wiki10k /work/corpora/wiki10k      # the 10,033 articles
    python benchmarks/corpora.py wiki300 /work/corpora/wiki300      # the 300-article slice
    python benchmarks/scale.py /work/corpora/wiki10k --slice /work/corpora/wiki300 \\
        --questions tests/data/wiki300_qa.jsonl --store embedded,milvus

Collections live in `--home` (default: a temporary folder, removed at the end), named
`scale-<store>` and `scale-<store>-slice`. `--reuse` keeps a collection already built there
instead of building it again (the build figure is then left out); `--interrupt SECONDS` kills the
first build with SIGKILL after that long and runs it again, and reports what the second run kept.

Figures (the targets are issue 10's):
- build: `pakus add CORPUS` into an empty collection, wall and CPU seconds (user + system of
  that process: on a machine shared with other work, CPU seconds / cores is what it would take
  alone);
- second add of the same folder, nothing changed; adding one new file, removing it (median of 3);
- warm `search`: p50 / p95 over 100 questions (the question file's, then "What is TITLE?" for
  articles spread over the corpus), embedding included, in one process after a warm-up pass;
- cold `pakus search` and cold `pakus ask` on the collection, the slice (same question: the
  difference is the collection's size) and the seeds (their own question), medians of
  `--runs` alternating runs, and the peak memory of the ask processes;
- evidence recall@5: the question file's answerable questions (follow-ups left out: they need the
  model to rewrite them), on the slice and on the whole corpus;
- FAISS: dense search alone over the 100 question vectors, with one thread and with the default.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, child_env, fmt, machine, median, pakus_command, run_child, run_worker, table

SEEDS_QUESTION = "What is CSF?"
TARGETS = {
    "build_s": ("pakus add of the corpus into an empty collection", "< 240 s"),
    "second_add_s": ("second pakus add, nothing changed", "< 10 s"),
    "add_one_s": ("add one new file", "< 2 s"),
    "remove_one_s": ("remove one file", "< 2 s"),
    "search_p50_ms": ("search warm p50, embedding included", "< 30 ms"),
    "search_p95_ms": ("search warm p95", "< 60 ms"),
    "cold_search_extra_s": ("cold pakus search: collection minus seeds", "-"),
    "cold_ask_extra_s": ("cold pakus ask: collection minus slice (or seeds)", "< 1 s"),
    "ask_memory_extra_mb": ("ask process peak memory: collection minus seeds", "< 500 MB"),
    "recall_drop_points": ("evidence recall@5: slice minus full corpus", "<= 2 points"),
}


# --- the worker: warm figures in one process -----------------------------------------------------------


def worker_warm(collection: str, corpus: str, questions: str, count: int) -> dict:
    from rag.bot import Bot
    from rag.evaluation import contains_evidence, load_questions, percentile
    from rag.settings import Settings

    from dataclasses import replace

    bot = Bot(replace(Settings.from_env(), collection=collection))
    records = load_questions(questions) if questions else []
    asked = [r["question"] for r in records]
    titles = sorted(Path(corpus).glob("*.md"))
    step = max(1, len(titles) // max(1, count - len(asked)))
    for path in titles[::step]:
        if len(asked) >= count:
            break
        first = path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
        asked.append(f"What is {first}?")
    started = time.perf_counter()
    bot.search(asked[0], 5)
    first_search = time.perf_counter() - started
    for question in asked:  # warm-up pass
        bot.search(question, 5)
    times = []
    for question in asked:
        started = time.perf_counter()
        bot.search(question, 5)
        times.append(time.perf_counter() - started)

    found, first = [], []
    for record in records:
        if record.get("answerable") and record.get("evidence") and not record.get("follow_up_of"):
            hits = bot.search(record["question"], 5)
            found.append(any(contains_evidence(hit.text, record["evidence"]) for hit in hits))
            first.append(bool(hits) and contains_evidence(hits[0].text, record["evidence"]))

    result = {"questions": len(asked), "first_search_s": first_search, "search_p50_ms": 1000 * median(times),
              "search_p95_ms": 1000 * percentile(times, 95), "recall_at_5": sum(found) / len(found) if found else None,
              "recall_at_1": sum(first) / len(first) if first else None, "recall_questions": len(found)}
    store = bot.collection.store
    if store.name == "embedded":
        result["faiss"] = _faiss_threads(bot, asked)
    return result


def _faiss_threads(bot, questions: list[str]) -> dict:
    """Dense search alone over the question vectors, one OpenMP thread against the default."""
    import faiss

    vectors = bot.embedder.embed(questions)
    store = bot.collection.store
    store.dense_search(vectors[0], 20)  # loaded
    out = {"chunks": store._search_now().dense.ntotal}
    for label, threads in (("1 thread", 1), (f"{os.cpu_count()} threads (default)", os.cpu_count())):
        faiss.omp_set_num_threads(threads)
        times = []
        for _ in range(3):
            for vector in vectors:
                started = time.perf_counter()
                store.dense_search(vector, 20)
                times.append(time.perf_counter() - started)
        out[label] = {"p50_ms": 1000 * median(times), "max_ms": 1000 * max(times)}
    faiss.omp_set_num_threads(1)
    return out


# --- the parent: real pakus processes ------------------------------------------------------------------


class Runner:
    def __init__(self, home: Path):
        self.env = child_env(PAKUS_HOME=str(home))
        self.pakus, _ = pakus_command()
        self.home = home

    def run(self, *args: str, timeout: float = 3600):
        child = run_child([*self.pakus, *args], env=self.env, timeout=timeout)
        if child.returncode not in (0, 1):
            tail = "\n".join(child.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"pakus {' '.join(args)} failed ({child.returncode}):\n{tail}")
        return child

    def folder(self, name: str) -> Path:
        return self.home / "collections" / name


def build(runner: Runner, corpus: Path, name: str, store: str, interrupt: float | None) -> dict:
    """`pakus add` into an empty collection; with `interrupt`, killed once and run again."""
    shutil.rmtree(runner.folder(name), ignore_errors=True)
    args = ["add", str(corpus), "-c", name, "--store", store, "--json"]
    result: dict = {}
    if interrupt:
        started = time.perf_counter()
        process = subprocess.Popen([*runner.pakus, *args], env=runner.env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            process.wait(timeout=interrupt)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
        killed_after = time.perf_counter() - started
        kept = runner.run("sources", "-c", name, "--json")
        stored = len(json.loads(kept.stdout)) if kept.returncode == 0 and kept.stdout.strip() else 0
        result["interrupted"] = {"killed_after_s": killed_after, "files_stored_before": stored}
    child = runner.run(*args)
    reports = json.loads(child.stdout)
    statuses = {}
    for report in reports:
        statuses[report["status"]] = statuses.get(report["status"], 0) + 1
    result.update(wall_s=child.wall, cpu_s=child.cpu, max_rss_mb=child.max_rss / 2**20, files=len(reports), statuses=statuses,
                  chunks_embedded=sum(r.get("chunks") or 0 for r in reports if r["status"] in ("added", "updated")))
    if interrupt:
        result["interrupted"]["rerun_unchanged"] = statuses.get("unchanged", 0)
        result["interrupted"]["rerun_added"] = statuses.get("added", 0)
        result["interrupted"]["none_embedded_twice"] = statuses.get("unchanged", 0) == result["interrupted"]["files_stored_before"]
    return result


def one_file(runner: Runner, name: str, repeats: int = 3) -> dict:
    adds, removes = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for n in range(repeats):
            path = Path(scratch) / f"scale-probe-{n}.md"
            path.write_text(f"# Scale probe {n}\n\nThe Zanzibar spice trade flourished in the nineteenth century, when clove "
                            f"plantations covered Unguja and Pemba (probe {n}). Omani sultans moved their capital there in 1840.\n",
                            encoding="utf-8")
            adds.append(runner.run("add", str(path), "-c", name).wall)
            removes.append(runner.run("remove", str(path), "-c", name).wall)
    return {"add_one_s": median(adds), "remove_one_s": median(removes), "add_all": adds, "remove_all": removes}


def cold(runner: Runner, targets: dict[str, tuple[str, str]], runs: int) -> dict:
    """Cold `pakus search` and `pakus ask` of each (collection, question) in `targets`, the
    collections in turn, `runs` times; medians, and the peak memory of the ask processes."""
    walls: dict[str, list[float]] = {}
    memory: dict[str, int] = {}
    for _ in range(runs):
        for label, (name, question) in targets.items():
            walls.setdefault(f"search_{label}", []).append(runner.run("search", question, "-c", name).wall)
            child = runner.run("ask", question, "-c", name, "--json")
            walls.setdefault(f"ask_{label}", []).append(child.wall)
            memory[label] = max(memory.get(label, 0), child.max_rss)
    result = {f"{key}_s": median(values) for key, values in walls.items()}
    result.update({f"ask_{label}_max_rss_mb": rss / 2**20 for label, rss in memory.items()})
    return result


def measure_store(args, store: str, home: Path) -> dict:
    runner = Runner(home)
    name, slice_name = f"scale-{store}", f"scale-{store}-slice"
    figures: dict = {"store": store}
    exists = (runner.folder(name) / "collection.json").is_file()
    if not (args.reuse and exists):
        print(f"[{store}] building {name} from {args.corpus} ...", file=sys.stderr, flush=True)
        figures["build"] = build(runner, args.corpus, name, store, args.interrupt)
    if args.slice and not (args.reuse and (runner.folder(slice_name) / "collection.json").is_file()):
        print(f"[{store}] building {slice_name} from {args.slice} ...", file=sys.stderr, flush=True)
        figures["slice_build"] = build(runner, args.slice, slice_name, store, None)
    print(f"[{store}] second add, one file ...", file=sys.stderr, flush=True)
    figures["second_add_s"] = runner.run("add", str(args.corpus), "-c", name).wall
    figures.update(one_file(runner, name))
    print(f"[{store}] warm search ...", file=sys.stderr, flush=True)
    questions = str(args.questions) if args.questions else ""
    figures["warm"], _ = run_worker(Path(__file__), "warm", name, str(args.corpus), questions, str(args.count), env=runner.env)
    if args.slice:
        figures["warm_slice"], _ = run_worker(Path(__file__), "warm", slice_name, str(args.slice), questions, str(args.count),
                                              env=runner.env)
    if args.runs:
        print(f"[{store}] cold search and ask ...", file=sys.stderr, flush=True)
        question = _first_direct_question(args.questions) or "What is the subject of these documents?"
        # The same question on the whole corpus and on the slice (same answer path, so the
        # difference is the collection's size); the seeds with their own question, for reference.
        targets = {"full": (name, question), "seeds": ("seeds", SEEDS_QUESTION)}
        if args.slice:
            targets["slice"] = (slice_name, question)
        figures["cold"] = cold(runner, targets, args.runs)
    return figures


def _first_direct_question(path: Path | None) -> str | None:
    if not path:
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else {}
        if record.get("kind") == "direct" and record.get("answerable"):
            return record["question"]
    return None


def summary(figures: dict) -> dict:
    """The issue's figures from one store's measurements."""
    warm, cold_ = figures.get("warm", {}), figures.get("cold", {})
    out = {
        "build_s": figures.get("build", {}).get("wall_s"),
        "second_add_s": figures.get("second_add_s"),
        "add_one_s": figures.get("add_one_s"),
        "remove_one_s": figures.get("remove_one_s"),
        "search_p50_ms": warm.get("search_p50_ms"),
        "search_p95_ms": warm.get("search_p95_ms"),
        "cold_search_extra_s": _minus(cold_.get("search_full_s"), cold_.get("search_seeds_s")),
        "cold_ask_extra_s": _minus(cold_.get("ask_full_s"), cold_.get("ask_slice_s", cold_.get("ask_seeds_s"))),
        "ask_memory_extra_mb": _minus(cold_.get("ask_full_max_rss_mb"), cold_.get("ask_seeds_max_rss_mb")),
        "recall_drop_points": None,
    }
    if figures.get("warm_slice", {}).get("recall_at_5") is not None and warm.get("recall_at_5") is not None:
        out["recall_drop_points"] = 100 * (figures["warm_slice"]["recall_at_5"] - warm["recall_at_5"])
    return out


def _minus(a, b):
    return None if a is None or b is None else a - b


def details(figures: dict) -> list[str]:
    lines = []
    b = figures.get("build")
    if b:
        lines.append(f"build: {b['files']} files, {b['chunks_embedded']} chunks embedded in {b['wall_s']:.0f} s "
                     f"({b['chunks_embedded'] / b['wall_s']:.0f} chunks/s); CPU {b['cpu_s']:.0f} s "
                     f"(= {b['cpu_s'] / (os.cpu_count() or 1):.0f} s on {os.cpu_count()} idle cores); peak {b['max_rss_mb']:.0f} MB")
        if b.get("interrupted"):
            i = b["interrupted"]
            lines.append(f"interrupted: killed (SIGKILL) after {i['killed_after_s']:.0f} s with {i['files_stored_before']} files stored; "
                         f"the rerun kept {i['rerun_unchanged']} unchanged and added {i['rerun_added']}"
                         f" ({'none' if i['none_embedded_twice'] else 'SOME'} embedded twice); the build figure is the rerun alone")
    w, s = figures.get("warm", {}), figures.get("warm_slice", {})
    if w.get("recall_at_5") is not None:
        lines.append(f"evidence recall@5 (@1) on {w['recall_questions']} questions: full {100 * w['recall_at_5']:.1f}% "
                     f"({100 * w['recall_at_1']:.1f}%)" + (f", slice {100 * s['recall_at_5']:.1f}% ({100 * s['recall_at_1']:.1f}%)"
                                                          if s.get("recall_at_5") is not None else ""))
    if w.get("faiss"):
        f = w["faiss"]
        lines.append("FAISS flat dense search alone, " + f"{f['chunks']} vectors: "
                     + "; ".join(f"{k}: p50 {v['p50_ms']:.2f} ms, max {v['max_ms']:.1f} ms" for k, v in f.items() if isinstance(v, dict)))
    c = figures.get("cold")
    if c:
        for label in ("full", "slice", "seeds"):
            if f"ask_{label}_s" in c:
                lines.append(f"cold, {label}: search {c[f'search_{label}_s']:.2f} s, ask {c[f'ask_{label}_s']:.2f} s, "
                             f"ask peak memory {c[f'ask_{label}_max_rss_mb']:.0f} MB")
    return lines


def main() -> int:
    if "--worker" in sys.argv:  # a child process measuring the warm figures of one collection
        worker = argparse.ArgumentParser()
        worker.add_argument("--worker")
        worker.add_argument("--out")
        worker.add_argument("rest", nargs=4)
        args = worker.parse_args()
        collection, corpus, questions, count = args.rest
        Path(args.out).write_text(json.dumps(worker_warm(collection, corpus, questions, int(count))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    if "--render" in sys.argv:  # the table of a report saved with --json
        render(json.loads(Path(sys.argv[sys.argv.index("--render") + 1]).read_text()))
        return 0
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--store", default="embedded", help="embedded, milvus, or both: embedded,milvus")
    parser.add_argument("--slice", type=Path, help="a smaller folder of the same kind, for the recall comparison")
    parser.add_argument("--questions", type=Path, help="question file (JSONL) about documents in both folders")
    parser.add_argument("--home", type=Path, help="PAKUS_HOME for the collections (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="keep collections already built in --home")
    parser.add_argument("--interrupt", type=float, help="kill the first build after this many seconds, then run it again")
    parser.add_argument("--runs", type=int, default=3, help="cold search/ask runs per collection (0: skip)")
    parser.add_argument("--count", type=int, default=100, help="questions for the warm search figure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    report = {"machine": {**machine(), "load_average_at_start": round(os.getloadavg()[0], 2)}, "corpus": str(args.corpus),
              "stores": {}, "notes": []}
    scratch = None
    home = args.home
    if home is None:
        scratch = tempfile.TemporaryDirectory(prefix="pakus-scale-")
        home = Path(scratch.name)
    try:
        for store in args.store.split(","):
            if store == "milvus":
                import importlib.util

                missing = [name for name in ("pymilvus", "milvus_lite") if importlib.util.find_spec(name) is None]
                if missing:
                    report["notes"].append(f"milvus skipped: {', '.join(missing)} not installed (pip install -e '.[milvus]')")
                    continue
            try:
                figures = measure_store(args, store, home)
            except Exception as exc:  # noqa: BLE001 - one store failing leaves the other's figures
                report["notes"].append(f"{store} failed: {type(exc).__name__}: {str(exc).strip()[:500]}")
                continue
            report["stores"][store] = {"figures": figures, "summary": summary(figures)}
    finally:
        if scratch is not None:
            scratch.cleanup()
    report["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    render(report)
    return 0


def render(report: dict) -> None:
    m = report["machine"]
    print(f"{report['corpus']}: {m['cpus']} CPUs, load average {m['load_average_at_start']} at the start, {m['load_average_at_end']} at the end")
    stores = list(report["stores"])
    units = {"_s": "{:.2f} s", "_ms": "{:.1f} ms", "_mb": "{:.0f} MB", "_points": "{:.1f}"}
    rows = []
    for key, (label, target) in TARGETS.items():
        pattern = next(p for suffix, p in units.items() if key.endswith(suffix))
        rows.append([label, target, *(fmt(report["stores"][s]["summary"][key], pattern) for s in stores)])
    print(table(rows, ["figure", "target", *stores]))
    for store in stores:
        for line in details(report["stores"][store]["figures"]):
            print(f"[{store}] {line}")
    for note in report["notes"]:
        print(f"note: {note}")


if __name__ == "__main__":
    sys.exit(main())
