"""Answer quality per backend on the project's question sets, side by side.

    python benchmarks/quality.py                       # both question sets, both backends
    python benchmarks/quality.py --backends llama-cpp tests/data/extra_qa.jsonl
    python benchmarks/quality.py --json                # every report, per backend and file

Each backend runs in its own process (one model in memory at a time). The metrics are those of
`pakus eval` (rag/evaluation.py): retrieval recall, answer accuracy, declines, citations, latency.
Answers are deterministic (greedy decoding), so one run per question is enough here; for speed
figures use speed.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import ROOT, fmt, machine, run_worker, table

SCRIPT = Path(__file__).resolve()
BACKENDS = ("llama-cpp", "transformers")
DEFAULT_FILES = [ROOT / "tests" / "data" / name for name in ("seeds_qa.jsonl", "extra_qa.jsonl", "holdout_qa.jsonl")]

ROWS = [
    ("retrieval recall@1", ("retrieval", "recall_at_1"), "{:.0%}"),
    ("retrieval recall@5", ("retrieval", "recall_at_5"), "{:.0%}"),
    ("retrieval MRR", ("retrieval", "mrr"), "{:.2f}"),
    ("accuracy (answerable)", ("answers", "accuracy"), "{:.0%}"),
    ("unanswerable declined", ("answers", "declined_unanswerable"), "{:.0%}"),
    ("answerable declined (count)", ("answers", "wrongly_declined"), "{}"),
    ("citations supported", ("citations", "supported"), "{:.0%}"),
    ("citations on evidence", ("citations", "on_evidence"), "{:.0%}"),
    ("first token p50 (s)", ("latency", "first_token_p50"), "{:.2f}"),
    ("total p50 (s)", ("latency", "total_p50"), "{:.2f}"),
    ("total p95 (s)", ("latency", "total_p95"), "{:.2f}"),
    ("errors", ("errors",), "{}"),
]


def worker(backend: str, paths: list[str]) -> dict:
    from rag.bot import Bot
    from rag.evaluation import evaluate, load_questions
    from rag.settings import Settings

    bot = Bot(Settings.from_env().with_overrides(backend=backend))
    bot.warm_up()  # latency figures are for a warm bot
    reports = {}
    for path in paths:
        reports[Path(path).name] = evaluate(
            load_questions(path),
            search=lambda question, k: bot.search(question, k),
            ask=lambda question, history: bot.ask(question, history=history),
            progress=True,
        )
    return reports


def pick(report: dict, keys: tuple[str, ...]):
    for key in keys:
        report = report.get(key) if isinstance(report, dict) else None
    return report


def render(results: dict) -> str:
    out = [f"machine: {results['machine']['cpus']} CPUs, load average {results['machine']['load_average_1m']}"
           f" at start, {results['machine'].get('load_average_1m_end', '-')} at end"]
    reports = results["reports"]  # backend -> file -> report
    files = sorted({name for per_file in reports.values() for name in per_file})
    for name in files:
        columns = [b for b in reports if name in reports[b]]
        rows = [[label] + [fmt(pick(reports[b][name], keys), pattern) for b in columns] for label, keys, pattern in ROWS]
        out.append(f"\n{name}\n" + table(rows, ["", *columns]))
        # One line per question: which backend got it right.
        ids = [q["id"] for q in reports[columns[0]][name]["questions"]]
        per_question = {b: {q["id"]: q for q in reports[b][name]["questions"]} for b in columns}
        rows = []
        for qid in ids:
            marks = []
            for b in columns:
                q = per_question[b][qid]
                marks.append("ERROR" if q["error"] else ("ok" if q["correct"] else "FAIL"))
            rank = per_question[columns[0]][qid]["evidence_rank"]
            rows.append([qid, "-" if rank is None else str(rank), *marks])
        out.append(table(rows, ["id", "rank", *columns]))
    for backend, message in results.get("failed", {}).items():
        out.append(f"\n{backend}: FAILED: {message}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="question sets (JSONL); default: the project's two")
    parser.add_argument("--json", action="store_true", help="print every report as one JSON object")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated backends")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    paths = [str(Path(p).resolve()) for p in args.files] or [str(p) for p in DEFAULT_FILES if p.exists()]
    if args.worker:
        Path(args.out).write_text(json.dumps(worker(args.worker, paths)))
        return 0

    results: dict = {"machine": machine(), "reports": {}, "failed": {}}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        print(f"quality: {backend} ...", file=sys.stderr, flush=True)
        try:
            results["reports"][backend], _ = run_worker(SCRIPT, backend, *paths, timeout=3600, show_stderr=True)
        except RuntimeError as error:
            results["failed"][backend] = str(error)
    results["machine"]["load_average_1m_end"] = machine()["load_average_1m"]
    print(json.dumps(results, indent=2) if args.json else render(results))
    return 0 if results["reports"] and not results["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
