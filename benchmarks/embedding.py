"""Embedding throughput: pakus's NumPy forward pass of all-MiniLM-L6-v2 against the alternatives.

Every variant embeds the same texts (real chunks, made by pakus's own chunker) and is compared,
vector for vector, with sentence-transformers' `encode` on the same weights (the packaged model,
nothing downloaded). Variants run in turn, round after round, in one process, so a machine shared
with other work slows them alike; the figure is the median round. Two rates are printed:
texts per second of wall time, and texts per CPU-second of this process (user + system time),
which stays meaningful on a busy machine: for a one-thread variant it is the rate on one
dedicated core.

    python benchmarks/embedding.py                       # the seeds' chunks
    python benchmarks/embedding.py --corpus DIR --files 100 --rounds 3
    python benchmarks/embedding.py --only numpy --json

Variants (each skipped with a note when its package is missing):
- numpy: pakus's forward pass (rag/minilm.py, what a question goes through), batch size, sorting
  by length, BLAS threads (threadpoolctl), and two Python threads each running one BLAS thread;
- pakus onnx: the same pass as pakus's own ONNX graph in ONNX Runtime (rag/minilm_onnx.py, what
  ingestion goes through), batches of 16 and 32, one thread and two;
- numpy-unfused: the forward pass as it was before (q, k, v as three products, the scale applied
  to the scores, GELU over the whole batch at once), to show what the fused form buys;
- sentence-transformers: its own `encode` (torch, CPU), torch threads 1 and 2;
- torch-onnx: the model exported from torch (`torch.onnx.export`) into a temporary folder, with
  ONNX Runtime's own graph optimisations, intra-op threads 1 and 2;
- the BLAS kernel OpenBLAS picked, and the default variant again in a child process with
  OPENBLAS_CORETYPE set to an older kernel, to show what that variable costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import ROOT, child_env, fmt, machine, table

import numpy as np


def chunk_texts(corpus: Path | None, files: int) -> list[str]:
    """What pakus embeds for `files` documents spread evenly over `corpus` (default: the seeds)."""
    from rag.chunking import ChunkSettings, chunk_document, searchable_text
    from rag.embedding import MiniLMEmbedder
    from rag.ingest import read_document

    folder = corpus or ROOT / "seeds"
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in {".md", ".txt", ".html", ".pdf", ".docx"}
                   and p.name.lower() != "readme.md")
    if files and len(paths) > files:
        paths = [paths[i * len(paths) // files] for i in range(files)]
    counter = MiniLMEmbedder().count_tokens
    return [searchable_text(c) for p in paths for c in chunk_document(read_document(p, p.name), counter, ChunkSettings())]


# --- variants ------------------------------------------------------------------------------------


def pass_variant(model, texts: list[str], *, batch: int = 32, threads: int = 1, sort: bool = True, workers: int = 1,
                 engine: str = "numpy") -> Callable[[], np.ndarray]:
    """One of pakus's two engines (rag/minilm.py's NumPy pass, or its ONNX graph in ONNX Runtime)
    on `workers` threads, with NumPy's BLAS held at `threads` threads."""
    from threadpoolctl import threadpool_limits

    def run() -> np.ndarray:
        encoder = model._encode if engine == "numpy" else model._onnx.encode
        with threadpool_limits(limits=threads, user_api="blas"):
            ids = model.token_ids(texts)
            order = sorted(range(len(texts)), key=lambda i: len(ids[i])) if sort else list(range(len(texts)))
            batches = [order[s:s + batch] for s in range(0, len(order), batch)]
            vectors = np.zeros((len(texts), 384), dtype=np.float32)

            def encode(rows: list[int]) -> None:
                vectors[rows] = encoder([ids[i] for i in rows])

            if workers == 1:
                for rows in batches:
                    encode(rows)
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(encode, batches))
            return vectors

    return run


def _old_gelu(x: np.ndarray) -> np.ndarray:
    """rag/minilm.py's GELU before: the same erf approximation, in fresh arrays, whole batch."""
    z = np.abs(x) * np.float32(1 / np.sqrt(2))
    t = np.multiply(z, np.float32(0.3275911))
    t += 1
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coefficient)
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z
    np.subtract(1, poly, out=poly)
    poly *= np.sign(x)
    poly += 1
    poly *= x
    poly *= np.float32(0.5)
    return poly


def unfused_model(folder: Path):
    """rag/minilm.py's forward pass before (commit f2f8e43), for comparison."""
    from rag.minilm import MiniLM, _layer_norm, padded

    class Unfused(MiniLM):
        def _encode(self, batch_ids):
            w = self.w
            input_ids, mask = padded(batch_ids)
            length = input_ids.shape[1]
            x = (w["embeddings.word_embeddings.weight"][input_ids] + w["embeddings.position_embeddings.weight"][:length]
                 + w["embeddings.token_type_embeddings.weight"][0])
            x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
            attention_bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
            for layer in range(self.layers):
                x = self._old_layer(x, f"encoder.layer.{layer}.", attention_bias)
            pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
            return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

        def _old_layer(self, x, prefix, attention_bias):
            w = self.w
            batch, length, width = x.shape
            head_width = width // self.heads
            qkv_w, qkv_b = self._separate[prefix]

            def linear(y, weight, bias):
                return (y.reshape(-1, y.shape[-1]) @ weight + bias).reshape(batch, length, -1)

            def heads(i):
                y = linear(x, qkv_w[i], qkv_b[i]).reshape(batch, length, self.heads, head_width)
                return np.ascontiguousarray(y.transpose(0, 2, 1, 3))

            query, key, value = heads(0), heads(1), heads(2)
            scores = query @ np.ascontiguousarray(key.transpose(0, 1, 3, 2)) / np.float32(np.sqrt(head_width)) + attention_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ value
            context = context.transpose(0, 2, 1, 3).reshape(batch, length, width)
            x = _layer_norm(linear(context, w[f"{prefix}attention.output.dense.weight"], w[f"{prefix}attention.output.dense.bias"]) + x,
                            w[f"{prefix}attention.output.LayerNorm.weight"], w[f"{prefix}attention.output.LayerNorm.bias"])
            hidden = _old_gelu(linear(x, w[f"{prefix}intermediate.dense.weight"], w[f"{prefix}intermediate.dense.bias"]))
            return _layer_norm(linear(hidden, w[f"{prefix}output.dense.weight"], w[f"{prefix}output.dense.bias"]) + x,
                               w[f"{prefix}output.LayerNorm.weight"], w[f"{prefix}output.LayerNorm.bias"])

    model = Unfused(folder, 256)
    model._separate = {}
    scale = np.float32(np.sqrt(model.w["encoder.layer.0.attention.self.qkv.weight"].shape[0] // model.heads))
    for layer in range(model.layers):
        prefix = f"encoder.layer.{layer}."
        weight, bias = model.w[f"{prefix}attention.self.qkv.weight"], model.w[f"{prefix}attention.self.qkv.bias"]
        ws, bs = np.split(weight, 3, axis=1), np.split(bias, 3)
        ws[0], bs[0] = ws[0] * scale, bs[0] * scale  # undo the folded scale
        model._separate[prefix] = ([np.ascontiguousarray(w) for w in ws], bs)
    return model


def sentence_transformers_variant(folder: Path, texts: list[str], threads: int, reference):
    import torch

    def run() -> np.ndarray:
        torch.set_num_threads(threads)
        return reference.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)

    return run


def export_onnx(folder: Path, target: Path) -> Path:
    """The BERT part of the model as ONNX, exported by torch (pooling is done in NumPy)."""
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=torch.zeros_like(input_ids)).last_hidden_state

    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"},
            "hidden": {0: "batch", 1: "length"}}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Encoder(), (ids, ids), str(target), input_names=["input_ids", "attention_mask"],
                          output_names=["hidden"], dynamic_axes=axes, opset_version=17, dynamo=False)
    return target


def onnx_variant(path: Path, model, texts: list[str], threads: int, batch: int = 32):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run() -> np.ndarray:
        ids = model.token_ids(texts)
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        vectors = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            length = max(len(ids[i]) for i in rows)
            input_ids = np.zeros((len(rows), length), dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.int64)
            for r, i in enumerate(rows):
                input_ids[r, :len(ids[i])] = ids[i]
                mask[r, :len(ids[i])] = 1
            hidden = session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
            pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
            vectors[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return vectors

    return run


# --- measuring -------------------------------------------------------------------------------------


def measure(variants: dict[str, Callable[[], np.ndarray]], rounds: int, count: int) -> dict[str, dict]:
    """Each variant once to warm up (and for its vectors), then `rounds` rounds of all in turn."""
    vectors, walls, cpus = {}, {k: [] for k in variants}, {k: [] for k in variants}
    for name, run in variants.items():
        vectors[name] = run()
    for _ in range(rounds):
        for name, run in variants.items():
            cpu, wall = _cpu(), time.perf_counter()
            run()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(_cpu() - cpu)
    return {name: {"texts_per_s": count / float(np.median(walls[name])), "texts_per_cpu_s": count / float(np.median(cpus[name])),
                   "vectors": vectors[name]} for name in variants}


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def blas_info() -> list[dict]:
    from threadpoolctl import threadpool_info

    return [{k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
            for info in threadpool_info()]


def coretype_child(coretype: str | None, corpus: Path | None, files: int, rounds: int) -> dict:
    """The default variant, one BLAS thread, in a child process with OPENBLAS_CORETYPE as given."""
    env = child_env()
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    args = [sys.executable, __file__, "--child-coretype", "--files", str(files), "--rounds", str(rounds)]
    if corpus:
        args += ["--corpus", str(corpus)]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="folder of documents to chunk (default: the seeds)")
    parser.add_argument("--files", type=int, default=60, help="documents taken, spread evenly (default 60)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated: numpy,unfused,batches,st,onnx,coretype")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child-coretype", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    from rag.embedding import packaged_model_path
    from rag.minilm import MiniLM

    folder = packaged_model_path()
    texts = chunk_texts(args.corpus, args.files)
    model = MiniLM(folder, 256)
    if args.child_coretype:
        result = measure({"numpy": pass_variant(model, texts)}, args.rounds, len(texts))["numpy"]
        print(json.dumps({"texts_per_s": result["texts_per_s"], "texts_per_cpu_s": result["texts_per_cpu_s"], "blas": blas_info()}))
        return 0

    only = set(filter(None, args.only.split(","))) or {"numpy", "unfused", "batches", "st", "onnx", "coretype"}
    notes: list[str] = []
    variants: dict[str, Callable[[], np.ndarray]] = {}
    labels: dict[str, tuple[str, str, str, str]] = {}  # name -> (what, threads, batch, sorted)

    def add(name, run, what, threads, batch="32", ordered="yes"):
        variants[name] = run
        labels[name] = (what, str(threads), str(batch), ordered)

    if "numpy" in only:
        add("numpy t1", pass_variant(model, texts, threads=1), "numpy (pakus, questions)", 1)
        add("numpy t2", pass_variant(model, texts, threads=2), "numpy (pakus, questions)", "2 BLAS")
        add("numpy 2x1", pass_variant(model, texts, threads=1, workers=2), "numpy (pakus, questions)", "2 py x 1 BLAS")
    if "batches" in only:
        for size in (8, 16, 64, 128):
            add(f"numpy b{size}", pass_variant(model, texts, batch=size), "numpy (pakus, questions)", 1, size)
        add("numpy unsorted", pass_variant(model, texts, sort=False), "numpy (pakus, questions)", 1, 32, "no")
    if "onnx" in only and model._onnx is not None:
        for size in (16, 32):
            add(f"pakus onnx b{size}", pass_variant(model, texts, batch=size, engine="onnx"), "onnxruntime (pakus graph, ingestion)", 1, size)
        add("pakus onnx 2x1", pass_variant(model, texts, batch=16, workers=2, engine="onnx"), "onnxruntime (pakus graph, ingestion)",
            "2 py x 1", 16)
    if "unfused" in only:
        old = unfused_model(folder)
        add("unfused t1", pass_variant(old, texts, threads=1), "numpy, unfused (before)", 1)
        add("unfused t2", pass_variant(old, texts, threads=2), "numpy, unfused (before)", "2 BLAS")

    reference = None
    try:
        from sentence_transformers import SentenceTransformer

        reference = SentenceTransformer(str(folder), device="cpu")
        reference.max_seq_length = 256
    except ImportError:
        notes.append("sentence-transformers is not installed (pip install -e '.[test]'): vectors compared with pakus's own")
    if reference is not None and "st" in only:
        for threads in (1, 2):
            add(f"st t{threads}", sentence_transformers_variant(folder, texts, threads, reference), "sentence-transformers encode", threads)

    scratch = tempfile.TemporaryDirectory()
    if "onnx" in only:
        try:
            import onnxruntime  # noqa: F401

            path = export_onnx(folder, Path(scratch.name) / "minilm.onnx")
            for threads in (1, 2):
                add(f"torch-onnx t{threads}", onnx_variant(path, model, texts, threads), "onnxruntime (torch export)", threads)
        except ImportError as exc:
            notes.append(f"onnxruntime skipped: {exc.name} is not installed (pip install onnxruntime onnx; torch exports the model)")

    started_load = os.getloadavg()[0]
    results = measure(variants, args.rounds, len(texts))
    expected = (reference.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
                if reference is not None else results[next(iter(results))]["vectors"])
    for result in results.values():
        got = result.pop("vectors")
        result["max_abs_diff"] = float(np.abs(got - expected).max())
        result["min_cosine"] = float((got * expected).sum(1).min())

    coretypes = {}
    if "coretype" in only:
        for coretype in (None, "Haswell", "Prescott"):
            coretypes[coretype or "(unset: auto)"] = coretype_child(coretype, args.corpus, args.files, args.rounds)

    report = {"machine": {**machine(), "load_average_at_start": round(started_load, 2)}, "texts": len(texts),
              "mean_tokens": float(np.mean([len(i) for i in model.token_ids(texts)])),
              "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"), "blas": blas_info(),
              "variants": {name: {"what": labels[name][0], "threads": labels[name][1], "batch": labels[name][2],
                                  "sorted": labels[name][3], **result} for name, result in results.items()},
              "coretype": coretypes, "notes": notes}
    scratch.cleanup()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    m = report["machine"]
    print(f"{len(texts)} texts ({report['mean_tokens']:.0f} tokens on average); {m['cpus']} CPUs, load average "
          f"{m['load_average_at_start']} at the start; BLAS: {report['blas']}; OPENBLAS_CORETYPE={report['openblas_coretype_env']}")
    rows = [[name, r["what"], r["threads"], r["batch"], r["sorted"], fmt(r["texts_per_s"], "{:.1f}"), fmt(r["texts_per_cpu_s"], "{:.1f}"),
             f"{r['max_abs_diff']:.1e}", f"{r['min_cosine']:.7f}"] for name, r in report["variants"].items()]
    print(table(rows, ["variant", "what", "threads", "batch", "sorted", "texts/s", "texts/CPU-s", "max |diff|", "min cos"]))
    if coretypes:
        print()
        print(table([[name, fmt(r["texts_per_s"], "{:.1f}"), fmt(r["texts_per_cpu_s"], "{:.1f}"), r["blas"][0]["architecture"] if r["blas"] else "-"]
                     for name, r in coretypes.items()], ["OPENBLAS_CORETYPE", "texts/s", "texts/CPU-s", "kernel"]))
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
