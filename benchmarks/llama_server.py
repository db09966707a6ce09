"""N questions at once through the chat page against llama.cpp's own multi-slot `llama-server`.

    python benchmarks/llama_server.py                  # 1, 4 and 8 questions; a markdown table
    python benchmarks/llama_server.py --counts 4 --json
    python benchmarks/llama_server.py --build-only     # just build (or find) the server binary

llama-cpp-python's server (benchmarks/openai_server.py) has one slot: it answers concurrent
requests one after another. llama.cpp's `llama-server` has `--parallel N` slots and continuous
batching: the N answers decode together, one batched step for all of them. It is not on PyPI, but
its source is in llama-cpp-python's sdist (vendor/llama.cpp). This script:

1. builds `llama-server` once from the sdist of the installed llama-cpp-python version (fetched from
   PyPI, checked against its sha256) into ~/.cache/pakus/llama-server-<version>/: cmake Release,
   static, only the `llama-server` target, no web UI (the UI assets come either from npm or a
   download from Hugging Face; both are off, and the server then embeds an empty asset table), no
   OpenSSL; under `nice -n 19` with 2 jobs so that it does not disturb other measurements. The
   binary is reused when present.
2. starts it on the packaged model (`pakus model path`) on a free loopback port with --parallel N
   (N the largest count asked), a context of N x pakus's per-answer context (each slot gets
   pakus's context), the in-process backend's batch sizes, flash attention off and every core.
3. starts the chat page (`ui.app.build_app` + `serve`, in a subprocess) with PAKUS_BACKEND=openai
   pointed at that server and PAKUS_UI_CONCURRENCY=N, and asks through the page's API with
   gradio_client as a browser does: `show_question`, then `answer_<collection>`, one client (one
   visitor, one session) per question.
4. for each count n: the first n answerable questions of the seeds' set, all at once and then one
   after another; per question the time to its first streamed token and to its whole answer
   (from the moment the batch started), and whether the answer text is the same both ways.

The server is stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, child_env, fmt, machine, pakus_command  # noqa: E402  (puts ROOT on the path)
from openai_server import free_port, serving  # noqa: E402

SEEDS = ROOT.parent / "shared" / "eval" / "seeds_qa.jsonl"
PACKAGE = "llama-cpp-python"


# ---------------------------------------------------------------------------------------------
# 1. Building llama-server from the sdist
# ---------------------------------------------------------------------------------------------

def cache_dir(version: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pakus" / f"llama-server-{version}"


def sdist_file(version: str) -> tuple[str, str]:
    """(URL, sha256) of the sdist of `version`, from PyPI's simple index (its JSON form, PEP 691)."""
    request = urllib.request.Request(f"https://pypi.org/simple/{PACKAGE}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        index = json.load(response)
    wanted = f"{PACKAGE.replace('-', '_')}-{version}.tar.gz"
    for entry in index["files"]:
        if entry["filename"] == wanted:
            return entry["url"], entry["hashes"]["sha256"]
    raise SystemExit(f"PyPI lists no {wanted}")


def unpack_llama_cpp(version: str, into: Path) -> None:
    """Download the sdist, check its sha256 and extract its vendor/llama.cpp/ as `into`."""
    url, sha256 = sdist_file(version)
    with tempfile.TemporaryDirectory(dir=into.parent) as scratch:
        archive = Path(scratch) / url.rsplit("/", 1)[-1]
        print(f"downloading {url}", file=sys.stderr)
        with urllib.request.urlopen(url, timeout=300) as response, open(archive, "wb") as out:
            shutil.copyfileobj(response, out)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != sha256:
            raise SystemExit(f"{archive.name}: sha256 {digest}, PyPI says {sha256}")
        prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
            if not members:
                raise SystemExit(f"{archive.name} has no {prefix}")
            tar.extractall(scratch, members=members, filter="data")
        Path(scratch, prefix).rename(into)


def build_server(version: str | None = None, jobs: int = 2, verbose: bool = False) -> Path:
    """The `llama-server` binary for the installed llama-cpp-python, built on first use."""
    version = version or importlib.metadata.version(PACKAGE)
    cache = cache_dir(version)
    binary = cache / "build" / "bin" / "llama-server"
    if binary.exists():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    source = cache / "llama.cpp"
    if not (source / "CMakeLists.txt").exists():
        shutil.rmtree(source, ignore_errors=True)
        unpack_llama_cpp(version, source)
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    configure = ["cmake", "-S", str(source), "-B", str(cache / "build"), *generator,
                 "-DCMAKE_BUILD_TYPE=Release",
                 "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary, not llama-cpp-python's libraries
                 # The web UI: tools/ui is either built with npm (LLAMA_BUILD_UI, off by default) or
                 # downloaded from a Hugging Face bucket (LLAMA_USE_PREBUILT_UI, on by default);
                 # with both off scripts/ui-assets.cmake embeds an empty table, nothing fetched.
                 "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
                 "-DLLAMA_OPENSSL=OFF",  # no HTTPS (the server listens on loopback; no model downloads)
                 "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_APP=OFF"]
    build = ["cmake", "--build", str(cache / "build"), "--target", "llama-server", "-j", str(jobs)]
    log_path = cache / "build.log"
    started = time.perf_counter()
    with open(log_path, "ab") as log:
        for command in (configure, build):
            print("$ nice -n 19 " + " ".join(command), file=sys.stderr)
            done = subprocess.run(["nice", "-n", "19", *command], stdout=None if verbose else log,
                                  stderr=subprocess.STDOUT if not verbose else None)
            if done.returncode != 0:
                raise SystemExit(f"building llama-server failed (exit {done.returncode}); see {log_path}")
    if not binary.exists():
        raise SystemExit(f"the build finished but {binary} is missing; see {log_path}")
    print(f"built {binary} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return binary


# ---------------------------------------------------------------------------------------------
# 2. The llama.cpp server and the chat page
# ---------------------------------------------------------------------------------------------

@contextmanager
def llama_cpp_server(binary: Path, slots: int, log_path: Path, slot_dir: Path):
    """llama.cpp's server on the packaged model with `slots` slots; yields its base URL (…/v1)."""
    from rag.generators.llama_cpp import LLAMA_FLASH_ATTN, LLAMA_N_BATCH, LLAMA_N_UBATCH
    from rag.generators.model_files import default_gguf_path
    from rag.settings import Settings

    settings = Settings.from_env()
    threads = os.cpu_count() or 1
    port = free_port()
    command = [str(binary), "--model", str(default_gguf_path(settings)), "--host", "127.0.0.1", "--port", str(port),
               "--parallel", str(slots), "--cont-batching",
               # Each slot gets pakus's per-answer context: the KV cache is split, not shared.
               "--ctx-size", str(slots * settings.context_tokens), "--no-kv-unified",
               "--batch-size", str(LLAMA_N_BATCH), "--ubatch-size", str(LLAMA_N_UBATCH),
               "--flash-attn", "on" if LLAMA_FLASH_ATTN else "off",
               "--threads", str(threads), "--threads-batch", str(threads),
               "--fit", "off",  # take the sizes above as they are
               # Every measurement starts cold: no prompt kept in RAM between requests, and the
               # slots are erased before each one (the erase action needs a slot save path).
               "--cache-ram", "0", "--slot-save-path", str(slot_dir) + os.sep,
               "--no-webui"]
    with serving(command, f"http://127.0.0.1:{port}/health", log_path, name="llama-server"):
        yield f"http://127.0.0.1:{port}/v1"


def erase_slots(url: str, slots: int) -> None:
    import httpx

    base = url.removesuffix("/v1")
    for slot in range(slots):
        response = httpx.post(f"{base}/slots/{slot}", params={"action": "erase"}, timeout=30)
        response.raise_for_status()


@contextmanager
def chat_page(server_url: str, concurrency: int, log_path: Path):
    """`pakus ui` with the openai backend on `server_url`; yields the page's address."""
    port = free_port()
    command, _ = pakus_command()
    env = child_env(PAKUS_BACKEND="openai", PAKUS_OPENAI_BASE_URL=server_url,
                    PAKUS_UI_CONCURRENCY=str(concurrency), PAKUS_OPENAI_MAX_IN_FLIGHT=str(concurrency),
                    # A question's first byte can wait for the prompts of all the others.
                    PAKUS_OPENAI_TIMEOUT="600", HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    url = f"http://127.0.0.1:{port}/"
    with serving([*command, "ui", "--port", str(port)], url, log_path, env=env, name="pakus ui"):
        yield url


# ---------------------------------------------------------------------------------------------
# 3. Asking through the page
# ---------------------------------------------------------------------------------------------

def _text(message: dict) -> str:
    content = message["content"]
    return "".join(part.get("text", "") for part in content) if isinstance(content, list) else content


def ask(client, question: str, k: int, collection: str, origin: float) -> dict:
    """One question as the page sends it (show_question, then answer_question), timed from `origin`."""
    started = time.perf_counter()
    client.predict(question, api_name="/show_question")
    job = client.submit(k, collection, api_name="/answer_question")
    first = None
    last_chat = None
    for output in job:
        chat = output[0]
        if first is None and chat and "pk-streaming" in _text(chat[-1]):
            first = time.perf_counter()
        last_chat = chat
    chat, _explain, _box = job.result()
    last_chat = chat or last_chat
    done = time.perf_counter()
    final = _text(last_chat[-1]) if last_chat else ""
    return {"question": question, "ttft_s": (first or done) - origin, "total_s": done - origin,
            "own_ttft_s": (first or done) - started, "own_total_s": done - started,
            "streamed": first is not None, "answered": "pk-answered" in final,
            "error": "pk-error" in final, "answer_html": final}


def run_batch(page: str, questions: list[str], k: int, collection: str, *, at_once: bool) -> dict:
    from gradio_client import Client

    clients = [Client(page, verbose=False) for _ in questions]  # one visitor (session) each, made beforehand
    results: list[dict] = [{} for _ in questions]
    errors: list[BaseException] = []
    origin = time.perf_counter()

    def one(i: int, start: float) -> None:
        try:
            results[i] = ask(clients[i], questions[i], k, collection, start)
        except BaseException as error:  # reported after the others finish
            errors.append(error)

    if at_once:
        threads = [threading.Thread(target=one, args=(i, origin)) for i in range(len(questions))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i in range(len(questions)):
            one(i, origin)  # times from the start of the line: the i-th visitor waits for the others
    wall = time.perf_counter() - origin
    for client in clients:
        client.close()
    if errors:
        raise errors[0]
    return {"wall_s": wall, "questions": results}


def measure(counts: list[int], questions: list[str], binary: Path, scratch: Path) -> dict:
    from rag.collections import DEFAULT, answer_k, directory, read_info
    from rag.settings import Settings

    settings = Settings.from_env()
    collection = settings.collection or DEFAULT
    k = answer_k(settings, read_info(directory(settings, collection)))  # what the page's slider starts at
    slots = max(counts)
    loads: list[float] = []
    out: dict = {"slots": slots, "k": k, "collection": collection, "context_per_slot": settings.context_tokens,
                 "threads": os.cpu_count(), "runs": {}}
    with llama_cpp_server(binary, slots, scratch / "llama-server.log", scratch / "slots") as server, \
            chat_page(server, slots, scratch / "ui.log") as page:
        # The page's first question loads the embedder, the index and the reranker: not measured.
        run_batch(page, [questions[slots] if len(questions) > slots else questions[0]], k, collection, at_once=True)
        for n in counts:
            runs = {}
            for mode in ("at_once", "one_by_one"):
                if mode == "at_once":
                    erase_slots(server, slots)
                    loads.append(os.getloadavg()[0])
                    runs[mode] = run_batch(page, questions[:n], k, collection, at_once=True)
                else:
                    records = []
                    waited = 0.0  # the i-th visitor in line waits for the answers before it
                    for question in questions[:n]:
                        erase_slots(server, slots)  # each starts as cold as the ones asked at once
                        loads.append(os.getloadavg()[0])
                        record = run_batch(page, [question], k, collection, at_once=True)["questions"][0]
                        record["ttft_s"] = waited + record["own_ttft_s"]
                        record["total_s"] = waited + record["own_total_s"]
                        waited = record["total_s"]
                        records.append(record)
                    runs[mode] = {"wall_s": waited, "questions": records}
                print(f"{n} {mode.replace('_', ' ')}: {runs[mode]['wall_s']:.1f} s", file=sys.stderr)
            for a, b in zip(runs["at_once"]["questions"], runs["one_by_one"]["questions"]):
                a["same_as_one_by_one"] = a["answer_html"] == b["answer_html"]
            out["runs"][n] = runs
    out["load_average_during"] = {"min": round(min(loads), 2), "max": round(max(loads), 2)}
    return out


# ---------------------------------------------------------------------------------------------
# 4. Report
# ---------------------------------------------------------------------------------------------

def first_questions(path: Path, most: int) -> list[str]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["question"] for r in records if r.get("answerable") and not r.get("follow_up_of")][:most]


def markdown(report: dict) -> str:
    import statistics

    lines = ["| questions | asked | time to first token, median / max (s) | total, median / max (s) | "
             "all answered after (s) | answers/min | throughput vs one by one | same text as one by one |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for n, runs in report["runs"].items():
        for mode in ("at_once", "one_by_one"):
            run = runs[mode]
            qs = run["questions"]
            ttft, total = [q["ttft_s"] for q in qs], [q["total_s"] for q in qs]
            gain = runs["one_by_one"]["wall_s"] / run["wall_s"]
            same = (f"{sum(q['same_as_one_by_one'] for q in qs)}/{len(qs)}" if mode == "at_once" else "")
            lines.append(f"| {n} | {mode.replace('_', ' ')} | {statistics.median(ttft):.1f} / {max(ttft):.1f} | "
                         f"{statistics.median(total):.1f} / {max(total):.1f} | {run['wall_s']:.1f} | "
                         f"{len(qs) / run['wall_s'] * 60:.1f} | {gain:.2f}x | {same} |")
    lines.append("")
    lines.append("Per question (s; at once: from the moment all were sent; one by one: from the start of the line, "
                 "and in brackets its own time):")
    lines.append("")
    lines.append("| questions | # | first token at once | total at once | first token one by one | total one by one | same text |")
    lines.append("|---:|---:|---:|---:|---:|---:|---|")
    for n, runs in report["runs"].items():
        for i, (a, b) in enumerate(zip(runs["at_once"]["questions"], runs["one_by_one"]["questions"]), 1):
            lines.append(f"| {n} | {i} | {a['ttft_s']:.1f} | {a['total_s']:.1f} | {b['ttft_s']:.1f} ({b['own_ttft_s']:.1f}) | "
                         f"{b['total_s']:.1f} ({b['own_total_s']:.1f}) | {'yes' if a['same_as_one_by_one'] else 'NO'} |")
    m = report["machine"]
    lines.append("")
    lines.append(f"{report['date']}; {m['cpus']} cores ({m.get('cpu', '')}); llama-server {report['llama_cpp_python']} "
                 f"(llama-cpp-python's vendored llama.cpp), {report['slots']} slots of {report['context_per_slot']} tokens, "
                 f"{report['threads']} threads; load average before {m['load_average_1m']}, during "
                 f"{report['load_average_during']['min']}-{report['load_average_during']['max']} (with the server's own threads); "
                 f"other processes used {report['other_processes']['cores_on_average']} cores on average "
                 f"({report['other_processes']['cpu_s']} CPU s in {report['other_processes']['wall_s']} s)")
    return "\n".join(lines)


def busy_seconds() -> float:
    """CPU seconds all processes of the machine have spent so far (Linux /proc/stat; else 0)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this process and of its reaped children (the two servers, once stopped)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", nargs="?", type=Path, default=SEEDS if SEEDS.exists() else ROOT / "tests" / "data" / "seeds_qa.jsonl")
    parser.add_argument("--counts", default="1,4,8", help="comma-separated numbers of questions to ask at once")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    parser.add_argument("--build-only", action="store_true", help="build (or find) llama-server, print its path, stop")
    parser.add_argument("--jobs", type=int, default=2, help="compile jobs for the build (default 2)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs (their folder is printed)")
    args = parser.parse_args()

    binary = build_server(jobs=args.jobs)
    if args.build_only:
        print(binary)
        return
    counts = sorted({int(x) for x in args.counts.split(",")})
    questions = first_questions(args.questions, max(counts) + 1)
    if len(questions) < max(counts):
        raise SystemExit(f"{args.questions} has {len(questions)} answerable questions; {max(counts)} are needed")
    scratch = Path(tempfile.mkdtemp(prefix="pakus-llama-server-"))
    (scratch / "slots").mkdir()
    try:
        report = {"date": time.strftime("%Y-%m-%d"), "machine": {**machine(), "cpu": cpu_name()},
                  "llama_cpp_python": importlib.metadata.version(PACKAGE), "binary": str(binary),
                  "questions_file": str(args.questions)}
        busy, own, started = busy_seconds(), own_seconds(), time.perf_counter()
        report.update(measure(counts, questions, binary, scratch))
        wall = time.perf_counter() - started
        others = max(0.0, (busy_seconds() - busy) - (own_seconds() - own))
        # What other processes took from the cores meanwhile: ~0 on an idle machine.
        report["other_processes"] = {"cpu_s": round(others, 1), "wall_s": round(wall, 1),
                                     "cores_on_average": round(others / wall, 2)}
    finally:
        if args.keep_logs:
            print(f"logs: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(markdown(report))


if __name__ == "__main__":
    main()
