"""The same questions in-process and through an OpenAI-compatible server, side by side.

    python benchmarks/openai_server.py                       # seeds questions, both backends, a table
    python benchmarks/openai_server.py QUESTIONS.jsonl --json
    python benchmarks/openai_server.py --concurrent 4,8      # also: N questions at once through the server

Starts llama-cpp-python's server on the packaged model (`pakus model path`) on a free loopback
port, with the in-process backend's settings (context, batch sizes, flash attention, threads),
runs `pakus eval --json` once with `--backend llama-cpp` and once with `--backend openai`, and
prints, per question, whether the two answers are the same text, whether each is correct, and
the time to first token and total of each. The server is stopped at the end, whatever happens.

--concurrent N asks the first N answerable questions at once through Bot.ask_stream (what the chat
page calls, one thread per visitor) against the server, and once one after another, and reports
time to first token and total for each. llama-cpp-python's server has one slot (one model, one
context): it queues concurrent requests; pakus's part is not to add a lock of its own in front.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def llama_server(log_path: Path):
    """llama-cpp-python's server on the packaged model, as the in-process backend runs it; yields its URL."""
    from rag.generators.llama_cpp import LLAMA_FLASH_ATTN, LLAMA_N_BATCH, LLAMA_N_UBATCH, threads_free
    from rag.generators.model_files import default_gguf_path
    from rag.settings import Settings

    settings = Settings.from_env()
    # The server cannot adapt its threads as the in-process backend does: it gets what is free now.
    threads = decode_threads = threads_free(settings.threads)
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_gguf_path(settings)),
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(settings.context_tokens),
               "--n_batch", str(LLAMA_N_BATCH), "--n_ubatch", str(LLAMA_N_UBATCH), "--flash_attn", str(LLAMA_FLASH_ATTN).lower(),
               "--n_threads", str(decode_threads), "--n_threads_batch", str(threads), "--interrupt_requests", "false"]
    with serving(command, f"http://127.0.0.1:{port}/v1/models", log_path):
        yield f"http://127.0.0.1:{port}/v1"


@contextmanager
def serving(command: list[str], health_url: str, log_path: Path, *, timeout: float = 180,
            env: dict[str, str] | None = None, name: str = "the server"):
    """Start `command` (its output to `log_path`), wait until `health_url` answers 200, and stop it
    at the end, whatever happens."""
    import httpx

    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with {process.returncode}; see {log_path}")
            try:
                if httpx.get(health_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not answer within {timeout:.0f} s; see {log_path}")
            time.sleep(0.5)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_eval(backend: str, questions: Path, env: dict[str, str]) -> dict:
    command = [sys.executable, "-m", "rag.cli", "eval", str(questions), "--json", "--backend", backend]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    return json.loads(done.stdout)


def compare_table(local: dict, server: dict) -> str:
    rows = [("id", "same answer", "correct in-process", "correct server", "TTFT in-process s", "TTFT server s",
             "total in-process s", "total server s")]
    by_id = {q["id"]: q for q in server["questions"]}
    same = 0
    for q in local["questions"]:
        s = by_id[q["id"]]
        equal = q["answer"] == s["answer"] and q["answered"] == s["answered"]
        same += equal
        t1, t2 = q["timings"], s["timings"]

        def fmt(value):
            return "-" if value is None else f"{value:.2f}"

        rows.append((q["id"], "yes" if equal else "NO", "yes" if q["correct"] else "no", "yes" if s["correct"] else "no",
                     fmt(t1.get("first_token")), fmt(t2.get("first_token")), fmt(t1.get("total")), fmt(t2.get("total"))))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(cell).rjust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))

    def total(report, key):
        return sum(q["timings"].get(key) or 0 for q in report["questions"])

    correct_local = sum(q["correct"] for q in local["questions"])
    correct_server = sum(q["correct"] for q in server["questions"])
    n = len(local["questions"])
    lines.append("")
    lines.append(f"same answer text: {same}/{n}; correct: in-process {correct_local}/{n}, server {correct_server}/{n}; "
                 f"total time: in-process {total(local, 'total'):.1f} s, server {total(server, 'total'):.1f} s")
    return "\n".join(lines)


def concurrent_run(url: str, questions: list[str], *, at_once: bool) -> list[dict]:
    """Each question through Bot.ask_stream in its own thread (at once) or one after another."""
    os.environ["PAKUS_OPENAI_BASE_URL"] = url
    from rag.bot import Bot
    from rag.schema import Answer
    from rag.settings import Settings

    bot = Bot(Settings.from_env().with_overrides(backend="openai"))
    bot.warm_up()
    results: list[dict] = [{} for _ in questions]
    origin = time.perf_counter()

    def ask(i: int, question: str) -> None:
        started = time.perf_counter()
        first = None
        for item in bot.ask_stream(question):
            if first is None and isinstance(item, str):
                first = time.perf_counter()
            if isinstance(item, Answer):
                results[i] = {"question": question, "ttft_s": (first or time.perf_counter()) - origin,
                              "total_s": time.perf_counter() - origin, "own_s": time.perf_counter() - started,
                              "answered": item.answered}

    if at_once:
        threads = [threading.Thread(target=ask, args=(i, q)) for i, q in enumerate(questions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i, q in enumerate(questions):
            ask(i, q)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", nargs="?", type=Path, default=ROOT / "tests" / "data" / "seeds_qa.jsonl")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--concurrent", help="comma-separated numbers of questions to ask at once (e.g. 4,8)")
    parser.add_argument("--skip-compare", action="store_true", help="only the concurrency measurement")
    args = parser.parse_args()

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out: dict = {}
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"pakus-llama-server-{os.getpid()}.log"
    if not args.skip_compare:
        out["in_process"] = run_eval("llama-cpp", args.questions, env)  # before the server takes memory and cores
    with llama_server(log) as url:
        env["PAKUS_OPENAI_BASE_URL"] = url
        if not args.skip_compare:
            out["server"] = run_eval("openai", args.questions, env)
        if args.concurrent:
            records = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
            asked = [r["question"] for r in records if r.get("answerable") and not r.get("follow_up_of")]
            out["concurrent"] = {}
            for n in (int(x) for x in args.concurrent.split(",")):
                out["concurrent"][n] = {"at_once": concurrent_run(url, asked[:n], at_once=True),
                                        "one_by_one": concurrent_run(url, asked[:n], at_once=False)}
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return
    if not args.skip_compare:
        print(compare_table(out["in_process"], out["server"]))
    for n, runs in out.get("concurrent", {}).items():
        print(f"\n{n} questions through the server:")
        for mode, rows in runs.items():
            ttft = [r["ttft_s"] for r in rows]
            total = [r["total_s"] for r in rows]
            print(f"  {mode:>10}: time to first token median {statistics.median(ttft):.1f} s, max {max(ttft):.1f} s; "
                  f"last answer at {max(total):.1f} s; {n / max(total) * 60:.1f} answers/minute")


if __name__ == "__main__":
    main()
