"""The embedder: a cheap constructor, token counts with special tokens, vectors equal to
sentence-transformers', and the fake's contract."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FakeEmbedder, assert_runs_in_a_fresh_python
from conftest import load_folder
from rag.embedding import EMBEDDER_NAME, MAX_TOKENS, MiniLMEmbedder


_NO_TORCH = "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]; assert not heavy, heavy"


def test_constructing_the_embedder_loads_no_model():
    assert_runs_in_a_fresh_python("import sys; from rag.embedding import MiniLMEmbedder as E; e = E(); "
                                  "assert (e.model_path / 'model.safetensors').is_file(); " + _NO_TORCH)


def test_embedding_imports_no_torch():
    # The point of the NumPy encoder: a cold `pakus ask` does not pay for importing torch.
    assert_runs_in_a_fresh_python("import sys; from rag.embedding import MiniLMEmbedder as E; "
                                  "assert E().embed(['What is CSF?']).shape == (1, 384); " + _NO_TORCH)


def test_token_counts_include_the_special_tokens(real_count_tokens):
    assert real_count_tokens("") == 2
    assert real_count_tokens("Pakistan") == 3
    long = "word " * 400
    assert real_count_tokens(long) == 402  # not truncated: chunk sizing must see the real length


def test_fingerprint_names_the_model_and_its_weights():
    fingerprint = MiniLMEmbedder().fingerprint()
    assert fingerprint["name"] == EMBEDDER_NAME and fingerprint["dimension"] == 384 and fingerprint["max_tokens"] == MAX_TOKENS
    assert len(fingerprint["weights_sha256"]) == 64


def test_the_fake_keeps_the_embedder_contract():
    fake = FakeEmbedder()
    vectors = fake.embed(["The Coalition Support Fund", "coalition support funds", "cricket trophy", "", "the of and"])
    assert vectors.shape == (5, fake.dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert vectors[0] @ vectors[1] > 0.99 and abs(vectors[0] @ vectors[2]) < 0.5
    np.testing.assert_array_equal(fake.embed(["The Coalition Support Fund"])[0], vectors[0])  # deterministic
    assert fake.count_tokens("three words here") == 5


@pytest.mark.real_model
def test_vectors_match_sentence_transformers(tiny_docs):
    """The NumPy forward pass computes what sentence-transformers computes for this model."""
    from sentence_transformers import SentenceTransformer

    embedder = MiniLMEmbedder()
    texts = [d.text for d in load_folder(tiny_docs.seeds, tiny_docs.project_root)]
    texts += ["What is CSF?", "", "word " * 400, "Pakistan’s €33 billion — naïve café"]  # short, empty, truncated, odd
    reference = SentenceTransformer(str(embedder.model_path), device="cpu")
    reference.max_seq_length = MAX_TOKENS
    expected = reference.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(embedder.embed(texts), expected, atol=2e-6)
    # Batching and padding do not change a vector.
    np.testing.assert_allclose(embedder.embed(texts[-1:]), expected[-1:], atol=2e-6)


def test_a_question_is_embedded_without_onnx_runtime():
    # Preparing ONNX Runtime's session takes about 0.6 s: a query never pays it.
    assert_runs_in_a_fresh_python("import sys; from rag.embedding import MiniLMEmbedder as E; E().embed(['What is CSF?']); "
                                  "assert 'onnxruntime' not in sys.modules")


@pytest.mark.real_model
def test_many_texts_go_through_onnx_runtime_with_the_same_vectors(tiny_docs):
    """Ingestion's engine (rag/minilm_onnx.py) computes what the NumPy pass and sentence-transformers compute."""
    from sentence_transformers import SentenceTransformer

    from rag.minilm import _BULK

    embedder = MiniLMEmbedder()
    words = " ".join(d.text for d in load_folder(tiny_docs.seeds, tiny_docs.project_root)).split()
    texts = [" ".join(words[i:i + 5 + i % 60]) for i in range(0, 40 * _BULK, 20)][:2 * _BULK]
    texts += ["What is CSF?", "", "word " * 400, "Pakistan’s €33 billion — naïve café"]
    vectors = embedder.embed(texts)
    assert embedder._model.__dict__.get("_onnx") is not None  # the bulk engine was used
    reference = SentenceTransformer(str(embedder.model_path), device="cpu")
    reference.max_seq_length = MAX_TOKENS
    np.testing.assert_allclose(vectors, reference.encode(texts, normalize_embeddings=True, convert_to_numpy=True), atol=2e-6)
    np.testing.assert_allclose(vectors[-4:], embedder.embed(texts[-4:]), atol=2e-6)  # the NumPy pass, for a few texts


@pytest.mark.real_model
def test_the_embedder_vocabulary_holds_everyday_words_not_terms():
    from rag.lexical import is_everyday_word

    words = MiniLMEmbedder().everyday_words
    assert len(words) > 15000 and {"capital", "founded", "package"} <= words
    assert is_everyday_word("accompanies", words) and is_everyday_word("warmly", words)
    assert is_everyday_word("outshines", words) and not is_everyday_word("unter", words)  # "shine", made over
    assert not any(is_everyday_word(term, words) for term in ("orjson", "tidyverse", "biryani"))
