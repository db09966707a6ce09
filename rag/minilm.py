"""all-MiniLM-L6-v2's forward pass in NumPy: sentence vectors without importing torch.

Why not sentence-transformers at run time: importing it (with torch, transformers and scikit-learn)
took 6.8 s of a cold `pakus ask` on the 2-core machine, for a 22M-parameter model whose forward pass
is a few matrix products. This module computes exactly what sentence-transformers computes for this
model (its modules.json: BERT -> mean pooling over real tokens -> L2 normalisation), from the same
safetensors weights and the same tokenizer.json, in about 0.1 s of imports. A test compares the two
on the real seed chunks.

Many texts at once (ingestion) go through the same pass built as an ONNX graph and run by ONNX
Runtime (rag/minilm_onnx.py), which is faster per text; questions stay here, with no session to
prepare. Both give the same vectors.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np

_LAYER_NORM_EPS = 1e-12  # config.json of the model
_ROWS = 256  # tokens per block of the feed-forward part of a layer
# From this many texts at once, ONNX Runtime embeds them (a quarter more texts per CPU-second);
# below, preparing its session (0.6 s) would cost more than it saves, and a question never pays it.
_BULK = 64


def padded(batch_ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of a batch padded to its longest ([PAD] is 0), and the mask of real tokens."""
    length = max(len(ids) for ids in batch_ids)
    input_ids = np.zeros((len(batch_ids), length), dtype=np.int64)
    mask = np.zeros((len(batch_ids), length), dtype=np.float32)
    for row, ids in enumerate(batch_ids):
        input_ids[row, :len(ids)] = ids
        mask[row, :len(ids)] = 1.0
    return input_ids, mask


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _LAYER_NORM_EPS) * weight + bias


def _layer_norm_(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """`_layer_norm` in place; `scratch` is an array of x's shape to work in."""
    x -= x.mean(-1, keepdims=True)
    scale = np.square(x, out=scratch).mean(-1, keepdims=True)
    scale += np.float32(_LAYER_NORM_EPS)
    np.sqrt(scale, out=scale)
    x /= scale
    x *= weight
    x += bias
    return x


# Abramowitz & Stegun 7.1.26 (erfc(z) ≈ t·P(t)·exp(−z²), t = 1/(1 + p·z), absolute error below
# 1.5e-7: under float32 rounding at this scale), with the 1/2 of the normal tail folded into P.
_ERFC_P = 0.3275911
_TAIL = [np.float32(0.5 * c) for c in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)]


def _gelu_(x: np.ndarray, t: np.ndarray, q: np.ndarray) -> np.ndarray:
    """BERT's "gelu", the exact form x·Φ(x) (not the tanh approximation), in place; `t` and `q`
    are arrays of x's shape to work in.

    NumPy has no erf and SciPy would add a dependency and 0.3 s of import. With Q the normal tail
    1 − Φ(|x|), x·Φ(x) = max(x, 0) − |x|·Q, for either sign of x.
    """
    np.abs(x, out=t)
    t *= np.float32(_ERFC_P / np.sqrt(2))
    t += 1
    np.reciprocal(t, out=t)
    np.multiply(t, _TAIL[4], out=q)
    for coefficient in reversed(_TAIL[:4]):
        q += coefficient
        q *= t
    np.square(x, out=t)
    t *= np.float32(-0.5)
    np.exp(t, out=t)
    q *= t  # Q(|x|)
    q *= np.abs(x, out=t)
    np.maximum(x, 0, out=x)
    x -= q
    return x


class _Scratch:
    """The arrays one batch works in, reused by every layer. A new array for every product and
    step cost more than the arithmetic (each large one is fresh memory for the kernel to map):
    measured, GELU on a block took 4.6 ms allocating its temporaries and 1.3 ms in these."""

    def __init__(self, batch: int, length: int, width: int, heads: int, inner: int):
        tokens = batch * length
        rows = min(tokens, _ROWS)
        self.qkv = np.empty((tokens, 3 * width), dtype=np.float32)
        self.scores = np.empty((batch, heads, length, length), dtype=np.float32)
        self.context = np.empty((batch, heads, length, width // heads), dtype=np.float32)
        self.merged = np.empty((tokens, width), dtype=np.float32)
        self.attended = np.empty((rows, width), dtype=np.float32)
        self.out = np.empty((rows, width), dtype=np.float32)
        self.narrow = np.empty((rows, width), dtype=np.float32)
        self.hidden = [np.empty((rows, inner), dtype=np.float32) for _ in range(3)]


class MiniLM:
    """A BERT encoder (6 layers, 12 heads, 384 wide) with mean pooling, from a model folder."""

    def __init__(self, folder: Path, max_tokens: int):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.max_tokens = max_tokens
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()  # counts must see the real length; `embed` truncates itself
        weights = load_file(str(folder / "model.safetensors"))
        # torch's Linear stores (out, in); transposed once here so every product is x @ W.
        self.w = {name: (value.T.copy() if name.startswith("encoder.") and value.ndim == 2 else value)
                  for name, value in weights.items()}
        # Query, key and value as one product (one BLAS call of 3x the width), with the attention
        # scale 1/√(head width) folded into the query's weights: one pass fewer over the scores.
        scale = np.float32(1 / np.sqrt(config["hidden_size"] // self.heads))
        for layer in range(self.layers):
            prefix = f"encoder.layer.{layer}.attention.self."
            parts = [(self.w.pop(f"{prefix}{name}.weight"), self.w.pop(f"{prefix}{name}.bias")) for name in ("query", "key", "value")]
            self.w[f"{prefix}qkv.weight"] = np.concatenate([parts[0][0] * scale, parts[1][0], parts[2][0]], axis=1)
            self.w[f"{prefix}qkv.bias"] = np.concatenate([parts[0][1] * scale, parts[1][1], parts[2][1]])

    @cached_property
    def _onnx(self):
        """The same pass in ONNX Runtime (rag/minilm_onnx.py), for many texts; None without it."""
        try:
            from .minilm_onnx import OnnxMiniLM

            return OnnxMiniLM(self)
        except ImportError:
            return None

    @cached_property
    def _blas(self):
        from threadpoolctl import ThreadpoolController

        return ThreadpoolController()  # after NumPy's import: it finds NumPy's BLAS

    def count_tokens(self, text: str) -> int:
        """Word pieces including [CLS] and [SEP], not truncated."""
        return len(self.tokenizer.encode(text).ids)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans in `text` of its word pieces, without [CLS] and [SEP]."""
        return self.tokenizer.encode(text, add_special_tokens=False).offsets

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Ids as the model reads them: at most `max_tokens`, keeping the closing [SEP] (what the
        tokenizer's own truncation gives)."""
        ids = [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]
        return [i if len(i) <= self.max_tokens else i[: self.max_tokens - 1] + i[-1:] for i in ids]

    def embed(self, texts: list[str], batch_size: int = 32, progress=False, workers: int = 1) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order given.

        With `workers` > 1, batches are encoded by that many threads at once, each with one BLAS
        thread: NumPy releases the GIL in every step of the pass, so the whole pass runs in
        parallel, not only the matrix products that BLAS threads would split.
        """
        ids = self.token_ids(texts)
        vectors = np.zeros((len(texts), self.w["embeddings.word_embeddings.weight"].shape[1]), dtype=np.float32)
        # Texts of similar length batch together, so little compute goes to padding.
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]

        engine = self._onnx.encode if len(texts) >= _BULK and self._onnx is not None else self._encode

        def encode(batch: list[int]) -> int:
            vectors[batch] = engine([ids[i] for i in batch])
            return len(batch)

        bar = None
        if progress is True:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc="embedding", unit=" texts", leave=False)
        report = bar.update if bar is not None else progress or (lambda done: None)
        # One BLAS thread, always: a question's products are tiny, and a second BLAS thread made
        # its embedding take 30-340 ms (p50) instead of 21-24 ms on the busy 2-core machine.
        with self._blas.limit(limits=1, user_api="blas"):
            if workers > 1 and len(batches) > 1:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(min(workers, len(batches))) as pool:
                    for done in pool.map(encode, batches):
                        report(done)
            else:
                for batch in batches:
                    report(encode(batch))
        if bar is not None:
            bar.close()
        return vectors

    def _encode(self, batch_ids: list[list[int]]) -> np.ndarray:
        w = self.w
        input_ids, mask = padded(batch_ids)
        length = input_ids.shape[1]

        x = (w["embeddings.word_embeddings.weight"][input_ids]
             + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])  # one segment: type 0 everywhere
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        # Padding gets a large negative score so that softmax gives it no attention.
        attention_bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        batch, _, width = x.shape
        scratch = _Scratch(batch, length, width, self.heads, w["encoder.layer.0.intermediate.dense.weight"].shape[1])
        rows = np.ascontiguousarray(x.reshape(-1, width))
        for layer in range(self.layers):
            self._layer(rows, batch, length, f"encoder.layer.{layer}.", attention_bias, scratch)

        x = rows.reshape(batch, length, width)
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)

    def _layer(self, rows: np.ndarray, batch: int, length: int, prefix: str, attention_bias: np.ndarray, s: _Scratch) -> None:
        """One encoder layer on the (batch·length, width) token rows, in place."""
        w = self.w
        width = rows.shape[1]
        head_width = width // self.heads

        qkv = np.matmul(rows, w[f"{prefix}attention.self.qkv.weight"], out=s.qkv)
        qkv += w[f"{prefix}attention.self.qkv.bias"]
        # (3, batch, heads, length, head_width): views, no copies.
        query, key, value = qkv.reshape(batch, length, 3, self.heads, head_width).transpose(2, 0, 3, 1, 4)
        scores = np.matmul(query, key.transpose(0, 1, 3, 2), out=s.scores)  # already scaled: see __init__
        scores += attention_bias
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        np.matmul(scores, value, out=s.context)
        np.copyto(s.merged.reshape(batch, length, self.heads, head_width), s.context.transpose(0, 2, 1, 3))

        # The rest works on each token alone, so it runs on blocks of rows: the feed-forward's
        # 4x-wide activations of a block stay in the CPU's cache. Each block's rows are read
        # (the residual) before they are overwritten with the layer's output.
        for start in range(0, len(rows), _ROWS):
            block = slice(start, start + _ROWS)
            n = len(rows[block])
            attended = np.matmul(s.merged[block], w[f"{prefix}attention.output.dense.weight"], out=s.attended[:n])
            attended += w[f"{prefix}attention.output.dense.bias"]
            attended += rows[block]
            _layer_norm_(attended, w[f"{prefix}attention.output.LayerNorm.weight"], w[f"{prefix}attention.output.LayerNorm.bias"], s.narrow[:n])
            hidden = np.matmul(attended, w[f"{prefix}intermediate.dense.weight"], out=s.hidden[0][:n])
            hidden += w[f"{prefix}intermediate.dense.bias"]
            _gelu_(hidden, s.hidden[1][:n], s.hidden[2][:n])
            out = np.matmul(hidden, w[f"{prefix}output.dense.weight"], out=s.out[:n])
            out += w[f"{prefix}output.dense.bias"]
            out += attended
            rows[block] = _layer_norm_(out, w[f"{prefix}output.LayerNorm.weight"], w[f"{prefix}output.LayerNorm.bias"], s.narrow[:n])
