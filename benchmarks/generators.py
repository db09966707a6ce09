"""Measure the generator backends side by side on the same realistic prompt.

    python benchmarks/generators.py                # both backends, a table
    python benchmarks/generators.py --json         # the same numbers as JSON
    python benchmarks/generators.py --backends llama-cpp --runs 5

Each backend runs in its own fresh subprocess, so load time and peak memory (ru_maxrss) belong to
that backend alone. The prompt is what the bot sends (rag.prompts): its system message, three
numbered passages from seeds/ and a question, about 500 tokens of which the system message is
about 270. After one warm-up answer, each run:

- cold: the system message starts with a run-specific word, so nothing of the previous prompt
  can be reused and the whole prompt is evaluated (time to first token = full prefill);
- warm: the standard system message was evaluated before (as after a first question), and a
  different question over different passages follows it: only the part after it is evaluated.

Medians over the runs are reported, with the best run next to them: on a shared machine the
best run is the closer estimate of what an idle machine does. Compare backends within one run.

    python benchmarks/generators.py --threads      # pakus's llama.cpp backend against raw llama.cpp

--threads measures prefill and decode tokens/s for each thread count from 1 to the number of
cores, inside pakus's llama.cpp backend (LlamaCppGenerator.stream, its settings) and in raw
llama-cpp-python (`Llama(n_threads=t, n_threads_batch=t)` with the library's defaults, driven by
`Llama.generate`), on the same prompt tokens, cold each time; raw and pakus runs alternate in
one process so that load from other processes hits both alike. It prints the best of the runs and
pakus/raw ratios against raw's best thread count, which is what `thread_counts` is chosen by.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

# (file, a phrase inside the passage) -> a window of sentences around the phrase, like a chunk.
PASSAGES = [
    ("pakistan-us-strategic-partnership-review.md", "Coalition Support Fund (CSF)"),
    ("pak-us-ties-and-global-security.txt", "Strategic Stability Dialogue"),
    ("pakistan-us-strategic-partnership-review.md", "Under the approved CSF program"),
]
TITLES = {
    "pakistan-us-strategic-partnership-review.md": "Pakistan-US Strategic Partnership: A Review Paper",
    "pak-us-ties-and-global-security.txt": "Pak-US ties and global security",
}
QUESTIONS = [
    "What is CSF, and what share of US funds to Pakistan did it account for?",
    "Which dialogue lets Pakistan and the US discuss nuclear safety?",
]


def passage(seeds: Path, name: str, phrase: str, words: int = 50) -> str:
    """About `words` words of whole sentences, starting with the one that contains `phrase`."""
    paragraph = next(p for p in (seeds / name).read_text(encoding="utf-8").split("\n") if phrase in p)
    sentences = re.split(r"(?<=[.!?])\s+", paragraph.strip())
    start = next(i for i, s in enumerate(sentences) if phrase in s)
    chosen: list[str] = []
    for sentence in sentences[start:]:
        if chosen and len(" ".join(chosen + [sentence]).split()) > words:
            break
        chosen.append(sentence)
    return " ".join(chosen)


def messages(seeds: Path, *, question: int = 0, order=(0, 1, 2), system_prefix: str = "") -> list[dict[str, str]]:
    """The bot's own prompt (rag.prompts) over three passages; `system_prefix` defeats prefix reuse."""
    from rag.prompts import answer_messages
    from rag.schema import Chunk, Hit

    hits = []
    for rank, index in enumerate(order, start=1):
        name, phrase = PASSAGES[index]
        text = passage(seeds, name, phrase)
        chunk = Chunk(Chunk.make_id(name, text), f"seeds/{name}", TITLES[name], "", 0, len(text), text)
        hits.append(Hit(rank=rank, chunk=chunk, score=1.0 / rank))
    msgs = answer_messages(QUESTIONS[question], hits)
    msgs[0] = {"role": "system", "content": system_prefix + msgs[0]["content"]}
    return msgs


def timed_answer(generator, msgs, max_tokens: int) -> dict:
    started = time.perf_counter()
    first = None
    pieces = []
    for piece in generator.stream(msgs, max_tokens=max_tokens):
        if first is None:
            first = time.perf_counter() - started
        pieces.append(piece)
    total = time.perf_counter() - started
    text = "".join(pieces)
    new_tokens = generator.count_tokens(text)
    prompt_tokens = len(generator.chat_tokens(msgs))
    return {
        "prompt_tokens": prompt_tokens,
        "ttft_s": first or total,
        "total_s": total,
        "new_tokens": new_tokens,
        "prefill_tps": prompt_tokens / (first or total),
        "decode_tps": (new_tokens - 1) / (total - first) if first and new_tokens > 1 and total > first else float("nan"),
        "text": text,
    }


def child(backend: str, runs: int, max_tokens: int) -> dict:
    """One backend, measured inside this (fresh) process."""
    from rag.generators import load_generator
    from rag.generators.hf_conversion import hf_folder_for
    from rag.generators.model_files import resolve_model
    from rag.settings import Settings

    settings = Settings.from_env().with_overrides(backend=backend)
    seeds = settings.seeds
    started = time.perf_counter()
    path = resolve_model(settings)  # assembles the GGUF on the very first run
    if backend == "transformers" and path.is_file():
        hf_folder_for(path, settings)  # one-time conversion, kept out of the load time
    prepare = time.perf_counter() - started

    started = time.perf_counter()
    generator = load_generator(settings)
    load = time.perf_counter() - started

    timed_answer(generator, messages(seeds, system_prefix="Warm-up. "), max_tokens)  # first-call costs
    cold, warm = [], []
    for run in range(runs):
        cold.append(timed_answer(generator, messages(seeds, system_prefix=f"Run {run}. "), max_tokens))
        # Realistic follow-up: the previous prompt's system message is cached; passages and question differ.
        generator.warm_up(messages(seeds)[:1])
        warm.append(timed_answer(generator, messages(seeds, question=1, order=(1, 2, 0)), max_tokens))

    def median(rows, key):
        return statistics.median(row[key] for row in rows)

    return {
        "backend": backend,
        "model": generator.model_name,
        "threads": settings.threads,
        "prepare_s": prepare,
        "load_s": load,
        "prompt_tokens": cold[0]["prompt_tokens"],
        "warm_prompt_tokens": warm[0]["prompt_tokens"],
        "ttft_s": median(cold, "ttft_s"),
        "ttft_best_s": min(row["ttft_s"] for row in cold),
        "total_s": median(cold, "total_s"),
        "total_best_s": min(row["total_s"] for row in cold),
        "new_tokens": median(cold, "new_tokens"),
        "prefill_tps": median(cold, "prefill_tps"),
        "decode_tps": median(cold, "decode_tps"),
        "warm_prefix_ttft_s": median(warm, "ttft_s"),
        "warm_prefix_ttft_best_s": min(row["ttft_s"] for row in warm),
        "warm_prefix_total_s": median(warm, "total_s"),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
        "sample_answer": cold[0]["text"],
    }


def thread_counts_to_try(cores: int) -> list[int]:
    return sorted({1, max(1, cores // 2), cores})


def thread_child(runs: int, max_tokens: int) -> dict:
    """Raw llama-cpp-python and pakus's backend, each with 1..cores threads, and pakus's own choice;
    every runner once per round, rounds repeated, so load from other processes hits all alike."""
    import llama_cpp

    from rag.generators.llama_cpp import LlamaCppGenerator
    from rag.generators.model_files import resolve_model
    from rag.settings import Settings

    settings = Settings.from_env()
    path = resolve_model(settings)
    cores = settings.threads
    runners: dict[str, object] = {}
    for t in thread_counts_to_try(cores):
        runners[f"raw {t}/{t}"] = llama_cpp.Llama(model_path=str(path), n_ctx=settings.context_tokens, n_threads=t,
                                                  n_threads_batch=t, verbose=False)
        runners[f"pakus {t}/{t}"] = LlamaCppGenerator(path, threads=t, context_tokens=settings.context_tokens,
                                                      fixed_threads=(t, t))
    runners["pakus default"] = LlamaCppGenerator(path, threads=cores, context_tokens=settings.context_tokens)
    rows: dict[str, list] = {name: [] for name in runners}
    chosen: list = []
    for run in range(runs + 1):  # the first round warms caches and is not counted
        for name, runner in runners.items():
            msgs = messages(settings.seeds, system_prefix=f"Run {run} {name}. ")  # a new prefix: nothing reused
            if name.startswith("raw"):
                row = raw_run(runner, runners["pakus default"].chat_tokens(msgs), max_tokens)
            else:
                row = pakus_run(runner, msgs, max_tokens)
                if name == "pakus default" and run:
                    chosen.append(runner.threads_now)
            if run:
                rows[name].append(row)
    keys = ("prefill_tps", "decode_tps")
    return {"cores": cores, "prompt_tokens": rows["pakus default"][0]["prompt_tokens"],
            "new_tokens": rows["pakus default"][0]["new_tokens"], "default_threads_chosen": chosen,
            "best": {name: {k: max(r[k] for r in got) for k in keys} for name, got in rows.items()},
            "median": {name: {k: statistics.median(r[k] for r in got) for k in keys} for name, got in rows.items()}}


def raw_run(llm, tokens: list[int], max_tokens: int) -> dict:
    """Raw llama-cpp-python, the way its own examples drive it: generate() greedily to the end of turn."""
    import llama_cpp

    llm.reset()
    started = time.perf_counter()
    produced, first = 0, None
    for token in llm.generate(tokens, temp=0.0, repeat_penalty=1.0):
        if first is None:
            first = time.perf_counter()
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
        produced += 1
        if produced >= max_tokens:
            break
    last = time.perf_counter()
    return {"prefill_tps": len(tokens) / (first - started), "decode_tps": (produced - 1) / (last - first),
            "prompt_tokens": len(tokens), "new_tokens": produced}


def pakus_run(generator, msgs, max_tokens: int) -> dict:
    started = time.perf_counter()
    stamps, text = [], ""
    for piece in generator.stream(msgs, max_tokens=max_tokens):
        stamps.append(time.perf_counter())
        text += piece
    new_tokens = generator.count_tokens(text)
    prompt_tokens = len(generator.chat_tokens(msgs))
    return {"prefill_tps": prompt_tokens / (stamps[0] - started), "decode_tps": (new_tokens - 1) / (stamps[-1] - stamps[0]),
            "prompt_tokens": prompt_tokens, "new_tokens": new_tokens}


def thread_table(result: dict) -> str:
    """Best (and median) rates per runner, then pakus's own choice against raw llama.cpp's best."""
    lines = [f"{'runner (prompt/decode threads)':>30}  {'prefill tok/s':>13}  {'decode tok/s':>12}  "
             f"{'median prefill':>14}  {'median decode':>13}"]
    for name, b in result["best"].items():
        m = result["median"][name]
        lines.append(f"{name:>30}  {b['prefill_tps']:>13.1f}  {b['decode_tps']:>12.1f}  {m['prefill_tps']:>14.1f}  {m['decode_tps']:>13.1f}")
    raws = {n: v for n, v in result["best"].items() if n.startswith("raw")}
    mine = result["best"]["pakus default"]
    lines.append("")
    for key, label in (("prefill_tps", "prefill"), ("decode_tps", "decode")):
        best_name = max(raws, key=lambda n: raws[n][key])
        lines.append(f"pakus default / raw best ({best_name}) {label}: {mine[key]:.1f} / {raws[best_name][key]:.1f} = "
                     f"{mine[key] / raws[best_name][key]:.2f}")
    for t in sorted({int(n.split()[1].split('/')[0]) for n in raws}):
        r, p = result["best"][f"raw {t}/{t}"], result["best"][f"pakus {t}/{t}"]
        lines.append(f"pakus / raw at {t}/{t} threads: prefill {p['prefill_tps'] / r['prefill_tps']:.2f}, "
                     f"decode {p['decode_tps'] / r['decode_tps']:.2f}")
    lines.append(f"threads pakus chose per run: {result['default_threads_chosen']}")
    return "\n".join(lines)


def run_threads(runs: int, max_tokens: int) -> dict:
    command = [sys.executable, __file__, "--thread-child", "--runs", str(runs), "--max-tokens", str(max_tokens)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"the measurement failed: exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_backend(backend: str, runs: int, max_tokens: int) -> dict:
    command = [sys.executable, __file__, "--child", backend, "--runs", str(runs), "--max-tokens", str(max_tokens)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)  # stderr (progress) passes through
    if done.returncode != 0:
        return {"backend": backend, "error": f"exit code {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


COLUMNS = [
    ("backend", "backend", "{}"),
    ("load s", "load_s", "{:.2f}"),
    ("TTFT s", "ttft_s", "{:.2f}"),
    ("best", "ttft_best_s", "{:.2f}"),
    ("total s", "total_s", "{:.2f}"),
    ("best", "total_best_s", "{:.2f}"),
    ("prefill tok/s", "prefill_tps", "{:.1f}"),
    ("decode tok/s", "decode_tps", "{:.1f}"),
    ("TTFT warm prefix s", "warm_prefix_ttft_s", "{:.2f}"),
    ("best", "warm_prefix_ttft_best_s", "{:.2f}"),
    ("total warm prefix s", "warm_prefix_total_s", "{:.2f}"),
    ("peak RSS MiB", "peak_rss_mib", "{:.0f}"),
]


def table(results: list[dict]) -> str:
    rows = [[title for title, _, _ in COLUMNS]]
    for result in results:
        if "error" in result:
            rows.append([result["backend"], result["error"]] + [""] * (len(COLUMNS) - 2))
        else:
            rows.append([fmt.format(result[key]) for _, key, fmt in COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="llama-cpp,transformers", help="comma-separated (default: both)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per backend after a warm-up (default 3)")
    parser.add_argument("--max-tokens", type=int, default=64, help="answer length cap (default 64)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--threads", action="store_true", help="pakus's llama.cpp backend against raw llama.cpp, per thread count")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--thread-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(child(args.child, args.runs, args.max_tokens)))
        return
    if args.thread_child:
        print(json.dumps(thread_child(args.runs, args.max_tokens)))
        return
    if args.threads:
        result = run_threads(args.runs, args.max_tokens)
        if args.json:
            print(json.dumps({"cpus": os.cpu_count(), "runs": args.runs, "max_tokens": args.max_tokens, **result}, indent=2))
            return
        print(f"prompt: {result['prompt_tokens']} tokens, cold; answers up to {args.max_tokens} tokens "
              f"({result['new_tokens']} produced); best (and median) of {args.runs} rounds; {result['cores']} cores\n")
        print(thread_table(result))
        return

    results = [run_backend(b.strip(), args.runs, args.max_tokens) for b in args.backends.split(",") if b.strip()]
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "runs": args.runs, "max_tokens": args.max_tokens, "results": results}, indent=2))
        return
    first = next((r for r in results if "error" not in r), None)
    if first:
        print(f"prompt: {first['prompt_tokens']} tokens (warm-prefix prompt {first['warm_prompt_tokens']}); "
              f"answers capped at {args.max_tokens} tokens; {first['threads']} threads; medians (and best) of {args.runs} runs\n")
    print(table(results))
    for result in results:
        if "error" not in result:
            print(f"\n{result['backend']} ({result['model']}): {result['sample_answer']!r}")


if __name__ == "__main__":
    main()
