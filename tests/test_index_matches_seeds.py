"""The committed index/ was built from the committed seeds/ with the current code and settings.

Only the embedder's tokenizer is loaded (no torch model), so this stays fast: re-chunking the seeds
must give exactly the committed chunks, so a change to loading or chunking that forgets to rebuild
the index fails here rather than in front of a user.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import pytest

from conftest import ROOT
from rag.embedding import MAX_TOKENS, MiniLMEmbedder
from rag.index import CHUNKS, CLEANING_VERSION, FORMAT_VERSION, MANIFEST, build_chunks, chunk_settings, embedding_text, verify_files
from rag.settings import Settings

INDEX = ROOT / "index"


@pytest.fixture(scope="module")
def settings():
    return Settings(project_root=ROOT)


@pytest.fixture(scope="module")
def manifest():
    return json.loads((INDEX / MANIFEST).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def committed():
    with open(INDEX / CHUNKS, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="module")
def count_tokens(real_count_tokens):
    return real_count_tokens


@pytest.fixture(scope="module")
def rebuilt(settings, count_tokens):
    class TokenizerOnly:  # build_chunks needs only count_tokens
        pass

    embedder = TokenizerOnly()
    embedder.count_tokens = count_tokens
    chunks, _ = build_chunks(settings, embedder)
    return chunks


def test_committed_files_match_their_manifest(manifest):
    assert manifest["format_version"] == FORMAT_VERSION
    verify_files(INDEX, manifest)


def test_source_hashes_are_those_of_the_current_seeds(manifest):
    current = {f"seeds/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted((ROOT / "seeds").iterdir()) if p.is_file()}
    assert manifest["sources"] == current


def test_chunk_settings_are_the_defaults(manifest):
    assert manifest["chunking"] == asdict(chunk_settings(Settings()))
    assert manifest["cleaning_version"] == CLEANING_VERSION


def test_rechunking_the_seeds_gives_the_committed_chunks(rebuilt, committed, manifest):
    assert [c.chunk_id for c in rebuilt] == [c["chunk_id"] for c in committed]
    assert [c.to_dict() for c in rebuilt] == committed
    assert manifest["chunks"] == len(committed)


def test_every_chunk_fits_the_embedder(rebuilt, count_tokens, settings):
    for chunk in rebuilt:
        assert count_tokens(chunk.text) <= settings.chunk_max_tokens, chunk.chunk_id
        # What is embedded carries the section heading too; it must never be truncated.
        assert count_tokens(embedding_text(chunk)) <= MAX_TOKENS, chunk.chunk_id


def test_index_was_embedded_with_the_packaged_model(manifest):
    assert manifest["embedder"] == MiniLMEmbedder().fingerprint()
