"""all-MiniLM-L6-v2's forward pass in NumPy: sentence vectors without importing torch.

Why not sentence-transformers at run time: importing it (with torch, transformers and scikit-learn)
took 6.8 s of a cold `pakus ask` on the 2-core machine, for a 22M-parameter model whose forward pass
is a few matrix products. This module computes exactly what sentence-transformers computes for this
model (its modules.json: BERT -> mean pooling over real tokens -> L2 normalisation), from the same
safetensors weights and the same tokenizer.json, in about 0.1 s of imports. A test compares the two
on the real seed chunks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_LAYER_NORM_EPS = 1e-12  # config.json of the model


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _LAYER_NORM_EPS) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's "gelu", the exact form 0.5·x·(1 + erf(x/√2)), not the tanh approximation.

    NumPy has no erf and SciPy would add a dependency and 0.3 s of import, so erf is Abramowitz &
    Stegun 7.1.26 (absolute error below 1.5e-7, under float32 rounding at this scale), computed in
    place because the activations are the largest arrays of the pass.
    """
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
    poly *= z  # poly is now 1 - erf(|x|/√2)
    np.subtract(1, poly, out=poly)
    poly *= np.sign(x)  # erf(x/√2)
    poly += 1
    poly *= x
    poly *= np.float32(0.5)
    return poly


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

    def count_tokens(self, text: str) -> int:
        """Word pieces including [CLS] and [SEP], not truncated."""
        return len(self.tokenizer.encode(text).ids)

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Ids as the model reads them: at most `max_tokens`, keeping the closing [SEP] (what the
        tokenizer's own truncation gives)."""
        ids = [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]
        return [i if len(i) <= self.max_tokens else i[: self.max_tokens - 1] + i[-1:] for i in ids]

    def embed(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order given."""
        ids = self.token_ids(texts)
        vectors = np.zeros((len(texts), self.w["embeddings.word_embeddings.weight"].shape[1]), dtype=np.float32)
        # Texts of similar length batch together, so little compute goes to padding.
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        starts = range(0, len(order), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="embedding", unit="batch", leave=False)
        for start in starts:
            batch = order[start:start + batch_size]
            vectors[batch] = self._encode([ids[i] for i in batch])
        return vectors

    def _encode(self, batch_ids: list[list[int]]) -> np.ndarray:
        w = self.w
        length = max(len(ids) for ids in batch_ids)
        input_ids = np.zeros((len(batch_ids), length), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros((len(batch_ids), length), dtype=np.float32)
        for row, ids in enumerate(batch_ids):
            input_ids[row, :len(ids)] = ids
            mask[row, :len(ids)] = 1.0

        x = (w["embeddings.word_embeddings.weight"][input_ids]
             + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])  # one segment: type 0 everywhere
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        # Padding gets a large negative score so that softmax gives it no attention.
        attention_bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for layer in range(self.layers):
            x = self._layer(x, f"encoder.layer.{layer}.", attention_bias)

        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)

    def _layer(self, x: np.ndarray, prefix: str, attention_bias: np.ndarray) -> np.ndarray:
        w = self.w
        batch, length, width = x.shape
        head_width = width // self.heads

        def linear(y: np.ndarray, name: str) -> np.ndarray:
            # One 2-D product for the whole batch: NumPy hands it to BLAS in a single call.
            flat = y.reshape(-1, y.shape[-1]) @ w[f"{prefix}{name}.weight"] + w[f"{prefix}{name}.bias"]
            return flat.reshape(batch, length, -1)

        def heads(name: str) -> np.ndarray:  # (batch, heads, length, head_width), contiguous for BLAS
            y = linear(x, f"attention.self.{name}").reshape(batch, length, self.heads, head_width)
            return np.ascontiguousarray(y.transpose(0, 2, 1, 3))

        query, key, value = heads("query"), heads("key"), heads("value")
        scores = query @ np.ascontiguousarray(key.transpose(0, 1, 3, 2)) / np.float32(np.sqrt(head_width)) + attention_bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ value
        context = context.transpose(0, 2, 1, 3).reshape(batch, length, width)

        x = _layer_norm(linear(context, "attention.output.dense") + x,
                        w[f"{prefix}attention.output.LayerNorm.weight"], w[f"{prefix}attention.output.LayerNorm.bias"])
        hidden = _gelu(linear(x, "intermediate.dense"))
        return _layer_norm(linear(hidden, "output.dense") + x, w[f"{prefix}output.LayerNorm.weight"], w[f"{prefix}output.LayerNorm.bias"])
