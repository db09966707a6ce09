"""The committed index/ was built from the committed seeds/ with the current code and settings.

Only the embedder's tokenizer is loaded (no model), so this stays fast: re-chunking the seeds must
give exactly the committed chunks, so a change to converting or chunking that forgets to rebuild
the index (`pakus index build --force`) fails here rather than in front of a user.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import asdict

import pytest

from conftest import ROOT, load_folder
from rag.chunking import chunk_document
from rag.collections import FORMAT_VERSION, read_info
from rag.embedding import MAX_TOKENS, MiniLMEmbedder
from rag.index import stale_reasons
from rag.ingest import CLEANING_VERSION, chunk_settings
from rag.settings import Settings

INDEX = ROOT / "index"


@pytest.fixture(scope="module")
def settings():
    return Settings(project_root=ROOT)


@pytest.fixture(scope="module")
def info():
    return read_info(INDEX)


@pytest.fixture(scope="module")
def db():
    connection = sqlite3.connect(f"{(INDEX / 'catalog.sqlite').as_uri()}?mode=ro", uri=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def committed(db):
    return sorted((json.loads(record) for (record,) in db.execute("SELECT record FROM chunks")), key=lambda c: (c["source"], c["start"]))


@pytest.fixture(scope="module")
def rebuilt(settings, real_count_tokens):
    chunks = [c for d in load_folder(settings.seeds, ROOT) for c in chunk_document(d, real_count_tokens, chunk_settings(settings))]
    return sorted((c.to_dict() for c in chunks), key=lambda c: (c["source"], c["start"]))


def test_the_manifest_is_current(info, settings):
    assert info.format_version == FORMAT_VERSION and info.cleaning_version == CLEANING_VERSION
    assert info.chunking == asdict(chunk_settings(settings)) and info.store == "embedded" and info.root == "."


def test_the_catalog_holds_the_current_seeds(db):
    recorded = dict(db.execute("SELECT path, doc FROM files"))
    current = {p.relative_to(ROOT).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in (ROOT / "seeds").iterdir() if p.suffix in (".md", ".txt") and p.name.lower() != "readme.md"}
    assert recorded == current


def test_the_index_is_up_to_date_by_its_own_check(settings):
    from rag.collections import open_collection

    opened = open_collection(settings)
    try:
        assert stale_reasons(opened, settings, MiniLMEmbedder()) == []
        assert sum(opened.store.documents().values()) == len(opened.store.chunks([c for c, _ in opened.store.dense_search(
            __import__("numpy").ones(384, dtype="float32") / 384 ** 0.5, 10_000)]))
    finally:
        opened.close()


def test_rechunking_the_seeds_gives_the_committed_chunks(rebuilt, committed):
    assert rebuilt == committed


def test_every_chunk_fits_the_embedder(rebuilt, real_count_tokens, settings):
    for chunk in rebuilt:
        assert real_count_tokens(chunk["text"]) <= min(settings.chunk_max_tokens, MAX_TOKENS)


def test_index_was_embedded_with_the_packaged_model(info):
    assert info.embedder == MiniLMEmbedder().fingerprint()


def test_the_committed_search_files_are_those_of_the_catalog(db):
    generation = int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
    assert [p.name for p in INDEX.glob("search-*")] == [f"search-{generation}"]
