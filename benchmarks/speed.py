"""Speed of pakus on this machine: start-up, cold and warm answers, index build, memory.

    python benchmarks/speed.py                 # everything, both backends, a table
    python benchmarks/speed.py --json          # the same figures as one JSON object
    python benchmarks/speed.py --only help,retrieval --backends llama-cpp

Every figure is a median of several runs after a warm-up run. Anything that loads a model runs in
its own subprocess, one at a time: memory is then per process, and two models never compete for
the (two) cores. Settings come from the environment (PAKUS_*), as for `pakus` itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _common import GIB, ROOT, child_env, fmt, machine, median, pakus_command, run_child, run_worker, table

SCRIPT = Path(__file__).resolve()
SECTIONS = ("help", "cold", "build", "retrieval", "answer")
BACKENDS = ("llama-cpp", "transformers")
COLD_QUESTION = "What is CSF?"
QUESTION_FILES = [ROOT / "tests" / "data" / "seeds_qa.jsonl", ROOT / "tests" / "data" / "extra_qa.jsonl"]

# name, figure key, limit, unit. A figure passes when it is below its limit.
TARGETS = [
    ("pakus --help", "help_s", 0.3, "s"),
    ("warm retrieval (median)", "retrieval_p50_s", 0.050, "s"),
    ("warm time to first token (median)", "first_token_p50_s", 3.0, "s"),
    ("warm answer total (median)", "total_p50_s", 5.0, "s"),
    ("cold `pakus ask`", "cold_ask_s", 12.0, "s"),
    ("peak memory of an ask process", "peak_rss_gib", 3.0, "GiB"),
]


def say(message: str) -> None:
    print(f"speed: {message}", file=sys.stderr, flush=True)


# --- measurements run from this process ---------------------------------------------------------


def measure_help(runs: int) -> dict:
    command, shown = pakus_command()
    run_child(command + ["--help"])  # warm-up: fills the OS file cache
    times = []
    for _ in range(runs):
        child = run_child(command + ["--help"])
        if child.returncode != 0:
            raise RuntimeError(f"pakus --help failed: {child.stderr.strip()[-500:]}")
        times.append(child.wall)
    return {"help_s": median(times), "help_runs": times, "command": shown}


def measure_cold_ask(runs: int) -> dict:
    """A new process per question: imports, index load, model load, one answer."""
    command, _ = pakus_command()
    argv = command + ["ask", COLD_QUESTION]
    # Warm-up: the first run ever may assemble the model file and build the index; not "cold start".
    warm_up = run_child(argv)
    if warm_up.returncode != 0:
        raise RuntimeError(f"pakus ask failed: {warm_up.stderr.strip()[-800:]}")
    times, peaks = [], []
    for _ in range(runs):
        child = run_child(argv)
        if child.returncode != 0:
            raise RuntimeError(f"pakus ask failed: {child.stderr.strip()[-800:]}")
        times.append(child.wall)
        peaks.append(child.max_rss)
    return {
        "cold_ask_s": median(times),
        "cold_ask_runs": times,
        "peak_rss_gib": max(peaks) / GIB,  # the worst run: memory is a limit, not an average
        "cold_answer": warm_up.stdout.strip()[:300],
    }


def measure_cli_build(runs: int) -> dict:
    """`pakus index build --force` in a new process, into a temporary index folder."""
    command, _ = pakus_command()
    times = []
    with tempfile.TemporaryDirectory(prefix="pakus-bench-index-") as scratch:
        env = child_env(PAKUS_INDEX_DIR=str(Path(scratch) / "index"))
        for attempt in range(runs + 1):
            child = run_child(command + ["index", "build", "--force"], env=env)
            if child.returncode != 0:
                raise RuntimeError(f"pakus index build failed: {child.stderr.strip()[-800:]}")
            if attempt:  # the first run is the warm-up
                times.append(child.wall)
    return {"cli_build_s": median(times), "cli_build_runs": times}


# --- workers: each runs in its own process ------------------------------------------------------


def _settings(backend: str | None = None):
    from rag.settings import Settings

    return Settings.from_env().with_overrides(backend=backend)


def _questions(answerable_only: bool = False) -> list[dict]:
    from rag.evaluation import load_questions

    questions = [q for path in QUESTION_FILES if path.exists() for q in load_questions(path)]
    # Follow-ups are left out: alone, "When was it revived?" is not the question that was timed.
    questions = [q for q in questions if not q.get("follow_up_of")]
    return [q for q in questions if q["answerable"]] if answerable_only else questions


def worker_build(runs: int) -> dict:
    """In-process index build with a warm embedder, and raw embedding throughput."""
    from rag.embedding import MiniLMEmbedder
    from rag.index import build_index, embedding_text

    embedder = MiniLMEmbedder()
    with tempfile.TemporaryDirectory(prefix="pakus-bench-index-") as scratch:
        settings = _settings().with_overrides(index_dir=Path(scratch) / "index")
        started = time.perf_counter()
        built = build_index(settings, embedder, progress=False)  # warm-up: loads the embedder
        first_build = time.perf_counter() - started
        builds = []
        for _ in range(runs):
            started = time.perf_counter()
            build_index(settings, embedder, progress=False)
            builds.append(time.perf_counter() - started)
        texts = [embedding_text(c) for c in built.chunks]  # exactly what the build embeds
        embeds = []
        for _ in range(runs):
            started = time.perf_counter()
            embedder.embed(texts)
            embeds.append(time.perf_counter() - started)
    return {
        "chunks": len(built.chunks),
        "first_build_s": first_build,
        "build_s": median(builds),
        "embed_s": median(embeds),
        "chunks_per_s": len(texts) / median(embeds),
    }


def worker_retrieval(runs: int) -> dict:
    """Warm `bot.search` latency over the question set, `runs` passes after a warm-up pass."""
    from rag.bot import Bot
    from rag.evaluation import percentile

    settings = _settings()
    bot = Bot(settings)
    questions = [q["question"] for q in _questions()]
    started = time.perf_counter()
    bot.search(questions[0], bot.k)  # loads the index and the embedder
    load = time.perf_counter() - started
    for question in questions:  # warm-up pass
        bot.search(question, bot.k)
    times = []
    for _ in range(runs):
        for question in questions:
            started = time.perf_counter()
            bot.search(question, bot.k)
            times.append(time.perf_counter() - started)
    return {
        "questions": len(questions),
        "first_search_s": load,
        "retrieval_p50_s": median(times),
        "retrieval_p95_s": percentile(times, 95),
    }


def _rates(timings: dict) -> tuple[float | None, float | None]:
    """Prefill and decode tokens/s: from the timings if the generator reports them, else derived."""
    prefill = timings.get("prefill_tokens_per_s")
    decode = timings.get("decode_tokens_per_s")
    prompt, completion = timings.get("prompt_tokens"), timings.get("completion_tokens")
    first, total, retrieval = timings.get("first_token"), timings.get("total"), timings.get("retrieval") or 0.0
    # first_token counts from the start of `ask`, so the prompt's share is first_token - retrieval.
    if prefill is None and prompt and first and first > retrieval:
        prefill = prompt / (first - retrieval)
    if decode is None and completion and completion > 1 and total and first and total > first:
        decode = (completion - 1) / (total - first)  # the first token belongs to the prefill
    return prefill, decode


def worker_answer(backend: str, count: int) -> dict:
    """Warm answers with one backend: time to first token, total, tokens/s, over `count` questions."""
    from rag.bot import Bot

    bot = Bot(_settings(backend))
    questions = [q["question"] for q in _questions(answerable_only=True)][: count + 1]
    started = time.perf_counter()
    bot.ask(questions[0])  # warm-up: loads the index, the embedder and the model
    first_ask = time.perf_counter() - started
    rows = []
    for question in questions[1:]:
        answer = bot.ask(question)
        timings = dict(answer.timings)
        prefill, decode = _rates(timings)
        rows.append({
            "question": question,
            "answered": answer.answered,
            "first_token": timings.get("first_token"),
            "total": timings.get("total"),
            "prompt_tokens": timings.get("prompt_tokens"),
            "completion_tokens": timings.get("completion_tokens"),
            "prefill_tokens_per_s": prefill,
            "decode_tokens_per_s": decode,
            "model": timings.get("model"),
        })

    def mid(key):
        return median([r[key] for r in rows if isinstance(r.get(key), (int, float))])

    return {
        "backend": backend,
        "model": next((r["model"] for r in rows if r["model"]), None),
        "model_short": _short_model(next((r["model"] for r in rows if r["model"]), None)),
        "first_ask_s": first_ask,
        "questions": len(rows),
        "answered": sum(1 for r in rows if r["answered"]),
        "first_token_p50_s": mid("first_token"),
        "total_p50_s": mid("total"),
        "prompt_tokens_p50": mid("prompt_tokens"),
        "completion_tokens_p50": mid("completion_tokens"),
        "prefill_tokens_per_s": mid("prefill_tokens_per_s"),
        "decode_tokens_per_s": mid("decode_tokens_per_s"),
        "per_question": rows,
    }


def _short_model(name: str | None) -> str | None:
    # "Qwen2.5 Coder 1.5B Instruct GGUF (qwen2.5-...gguf)" -> the part before the file name.
    return None if name is None else name.split(" (")[0][:40]


WORKERS = {"build": worker_build, "retrieval": worker_retrieval, "answer": worker_answer}


# --- report -------------------------------------------------------------------------------------


def targets(results: dict) -> list[dict]:
    """Each target with the measured figure (per backend where the figure is) and PASS/MISS."""
    checks = []
    for name, key, limit, unit in TARGETS:
        sources = [("", results.get(section, {})) for section in ("help", "cold", "retrieval")]
        sources += [(f" [{b}]", r) for b, r in results.get("answers", {}).items()]
        for suffix, section in sources:
            value = section.get(key)
            if isinstance(value, (int, float)):
                checks.append({"target": name + suffix, "value": value, "limit": limit, "unit": unit,
                               "verdict": "PASS" if value < limit else "MISS"})
    return checks


def render(results: dict) -> str:
    out = [f"machine: {results['machine']['cpus']} CPUs, load average {results['machine']['load_average_1m']}"
           f" at start, {results['machine'].get('load_average_1m_end', '-')} at end, Python {results['machine']['python']}"]
    if "help" in results:
        out.append(f"\npakus --help: {fmt(results['help']['help_s'], '{:.3f}')} s  ({results['help']['command']})")
    if "cold" in results:
        c = results["cold"]
        out.append(f"cold `pakus ask \"{COLD_QUESTION}\"`: {fmt(c['cold_ask_s'])} s,"
                   f" peak memory {fmt(c['peak_rss_gib'])} GiB")
    if "build" in results:
        b = results["build"]
        out.append(f"index build ({b['chunks']} chunks): {fmt(b['build_s'])} s warm in-process,"
                   f" {fmt(b.get('cli_build_s'))} s as `pakus index build --force`;"
                   f" embedding {fmt(b['chunks_per_s'], '{:.1f}')} chunks/s")
    if "retrieval" in results:
        r = results["retrieval"]
        out.append(f"warm retrieval over {r['questions']} questions: median {fmt(r['retrieval_p50_s'] * 1000, '{:.1f}')} ms,"
                   f" p95 {fmt(r['retrieval_p95_s'] * 1000, '{:.1f}')} ms")
    answers = results.get("answers", {})
    if answers:
        rows = []
        labels = [("model", "model_short", "{}"), ("first ask incl. loading (s)", "first_ask_s", "{:.1f}"),
                  ("answered / asked", None, None), ("time to first token p50 (s)", "first_token_p50_s", "{:.2f}"),
                  ("total p50 (s)", "total_p50_s", "{:.2f}"), ("prompt tokens p50", "prompt_tokens_p50", "{:.0f}"),
                  ("completion tokens p50", "completion_tokens_p50", "{:.0f}"),
                  ("prefill tokens/s", "prefill_tokens_per_s", "{:.1f}"),
                  ("decode tokens/s", "decode_tokens_per_s", "{:.1f}"), ("peak memory (GiB)", "peak_rss_gib", "{:.2f}")]
        for label, key, pattern in labels:
            if key is None:
                rows.append([label] + [f"{a['answered']}/{a['questions']}" for a in answers.values()])
            else:
                rows.append([label] + [fmt(a.get(key), pattern) for a in answers.values()])
        out.append("\nwarm answers\n" + table(rows, ["", *answers.keys()]))
    for name, message in results.get("failed", {}).items():
        out.append(f"\n{name}: FAILED: {message}")
    checks = results.get("targets", [])
    if checks:
        rows = [[c["target"], f"{c['value']:.3f} {c['unit']}", f"< {c['limit']} {c['unit']}", c["verdict"]] for c in checks]
        out.append("\ntargets\n" + table(rows, ["target", "measured", "limit", ""]))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated backends for warm answers")
    parser.add_argument("--questions", type=int, default=5, help="warm answers timed per backend (default 5)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs for cold ask, builds and retrieval passes")
    parser.add_argument("--help-runs", type=int, default=5, help="timed runs of `pakus --help`")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:  # a child process measuring one thing
        if args.worker == "answer":
            result = worker_answer(args.backend, args.questions)
        else:
            result = WORKERS[args.worker](args.runs)
        Path(args.out).write_text(json.dumps(result))
        return 0

    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; valid: {', '.join(SECTIONS)}")

    def build() -> dict:
        result, _ = run_worker(SCRIPT, "build", "--runs", str(args.runs))
        result.update(measure_cli_build(args.runs))
        return result

    def answer(backend: str) -> dict:
        result, child = run_worker(SCRIPT, "answer", "--backend", backend, "--questions", str(args.questions),
                                   timeout=1800)
        result["peak_rss_gib"] = child.max_rss / GIB
        return result

    steps = {
        "help": lambda: measure_help(args.help_runs),
        "cold": lambda: measure_cold_ask(args.runs),
        "build": build,
        "retrieval": lambda: run_worker(SCRIPT, "retrieval", "--runs", str(args.runs))[0],
    }
    results: dict = {"machine": machine(), "answers": {}, "failed": {}}
    # A failing measurement is reported and the others still run: one broken backend (or a CLI
    # command that is not there yet) must not hide every other figure.
    for section in sections:
        names = [b.strip() for b in args.backends.split(",") if b.strip()] if section == "answer" else [section]
        for name in names:
            say(f"warm answers with {name} ..." if section == "answer" else f"{name} ...")
            try:
                if section == "answer":
                    results["answers"][name] = answer(name)
                else:
                    results[name] = steps[name]()
            except Exception as error:
                results["failed"][name] = f"{type(error).__name__}: {error}"
    results["targets"] = targets(results)
    results["machine"]["load_average_1m_end"] = machine()["load_average_1m"]
    print(json.dumps(results, indent=2) if args.json else render(results))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
