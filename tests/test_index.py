"""Index: build/load round trip, the manifest, damage, staleness, atomic writes and status."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import FakeEmbedder, write_tiny_documents
from rag import __version__
from rag.errors import DocumentError, IndexCorruptError, IndexMissingError, IndexStaleError
from rag.index import (CHUNKS, DENSE, FORMAT_VERSION, LEXICAL, MANIFEST, build_index, embedding_text, index_status,
                       load_index, vectors_of)
from rag.lexical import tokenize


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(directory) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): sha256(p) for p in sorted(directory.rglob("*")) if p.is_file()}


def leftovers(settings) -> list[str]:
    """Temporary or old index folders left beside the index."""
    return sorted(p.name for p in settings.index.parent.iterdir() if p.name.startswith(f".{settings.index.name}-"))


# --- round trip ------------------------------------------------------------------------------------


def test_build_then_load_gives_the_same_index(tiny_index, fake_embedder):
    settings, built = tiny_index
    loaded = load_index(settings, fake_embedder, rebuild_if_stale=False)
    assert loaded.directory == settings.index
    assert [c.to_dict() for c in loaded.chunks] == [c.to_dict() for c in built.chunks]
    assert loaded.dense.ntotal == len(built.chunks) == loaded.manifest["chunks"]
    expected = fake_embedder.embed([embedding_text(c) for c in built.chunks])
    np.testing.assert_allclose(vectors_of(loaded), expected, atol=1e-6)
    # The lexical part scores the chunk that holds a rare word highest.
    scores = loaded.lexical.get_scores(tokenize("IMET"))
    assert "IMET" in loaded.chunks[int(np.argmax(scores))].text


def test_build_writes_the_documented_layout(tiny_index):
    settings, _ = tiny_index
    names = {p.relative_to(settings.index).as_posix() for p in settings.index.rglob("*") if p.is_file()}
    assert {MANIFEST, CHUNKS, DENSE} <= names
    assert any(name.startswith(LEXICAL + "/") for name in names)
    lines = (settings.index / CHUNKS).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["chunk_id"] for line in lines] == [c.chunk_id for c in tiny_index[1].chunks]


def test_manifest_describes_what_built_the_index(tiny_index, fake_embedder):
    settings, built = tiny_index
    manifest = json.loads((settings.index / MANIFEST).read_text(encoding="utf-8"))
    assert manifest == built.manifest
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["embedder"] == fake_embedder.fingerprint()
    assert manifest["embedder"]["dimension"] == 384
    assert manifest["chunking"] == {"max_tokens": settings.chunk_max_tokens, "overlap_sentences": settings.chunk_overlap_sentences,
                                    "min_section_tokens": 48}
    assert isinstance(manifest["cleaning_version"], int)
    seeds = settings.seeds
    assert manifest["sources"] == {f"seeds/{p.name}": sha256(p) for p in sorted(seeds.iterdir())}
    assert "seeds/sources.json" in manifest["sources"]
    assert manifest["documents"] == 3 and manifest["chunks"] == len(built.chunks)
    assert manifest["document_metadata"]["seeds/gwadar-port.txt"]["publisher"] == "24 News HD"
    assert manifest["versions"]["pakus"] == __version__
    assert {"faiss-cpu", "bm25s"} <= set(manifest["versions"])
    files = {name: digest for name, digest in snapshot(settings.index).items() if name != MANIFEST}
    assert manifest["files"] == files


# --- damage ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [CHUNKS, DENSE, f"{LEXICAL}/params.index.json"])
def test_a_damaged_file_is_corrupt(tiny_index, fake_embedder, name):
    settings, _ = tiny_index
    path = settings.index / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="damaged"):
        load_index(settings, fake_embedder, rebuild_if_stale=False)
    with pytest.raises(IndexCorruptError):  # corrupt is never silently rebuilt over
        load_index(settings, fake_embedder, rebuild_if_stale=True)


@pytest.mark.parametrize("name", [CHUNKS, DENSE, f"{LEXICAL}/vocab.index.json"])
def test_a_deleted_file_is_corrupt(tiny_index, fake_embedder, name):
    settings, _ = tiny_index
    (settings.index / name).unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        load_index(settings, fake_embedder, rebuild_if_stale=False)


@pytest.mark.parametrize("manifest_text", ["{not json", "[]", json.dumps({"format_version": 999})])
def test_an_unreadable_or_foreign_manifest_is_corrupt(tiny_index, fake_embedder, manifest_text):
    settings, _ = tiny_index
    (settings.index / MANIFEST).write_text(manifest_text, encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="index build --force"):
        load_index(settings, fake_embedder, rebuild_if_stale=False)


def test_a_manifest_listing_no_files_is_corrupt(tiny_index, fake_embedder):
    settings, built = tiny_index
    (settings.index / MANIFEST).write_text(json.dumps({**built.manifest, "files": {}}), encoding="utf-8")
    with pytest.raises(IndexCorruptError):
        load_index(settings, fake_embedder, rebuild_if_stale=False)


# --- missing and stale --------------------------------------------------------------------------------


def test_missing_index_raises_when_rebuilding_is_not_allowed(tiny_docs, fake_embedder):
    with pytest.raises(IndexMissingError, match="no index"):
        load_index(tiny_docs, fake_embedder, rebuild_if_stale=False)
    assert not tiny_docs.index.exists()


def test_missing_index_is_built_when_allowed(tiny_docs, fake_embedder, capsys):
    index = load_index(tiny_docs, fake_embedder)
    assert (tiny_docs.index / MANIFEST).is_file() and len(index.chunks) > 3
    assert "building it now" in capsys.readouterr().err


def test_missing_index_without_documents_is_one_clear_error(tmp_path, fake_embedder, capsys):
    from conftest import tiny_settings_for

    settings = tiny_settings_for(tmp_path)
    with pytest.raises(IndexMissingError, match="no document folder"):
        load_index(settings, fake_embedder)
    assert capsys.readouterr().err == ""


def test_documents_without_text_are_a_document_error(tmp_path, fake_embedder):
    from conftest import tiny_settings_for

    settings = tiny_settings_for(tmp_path)
    settings.seeds.mkdir()
    (settings.seeds / "empty.md").write_text("\n\n# \n\nStay tuned with 24 News HD Android App\n", encoding="utf-8")
    with pytest.raises(DocumentError, match="no text"):
        build_index(settings, fake_embedder, progress=False)
    assert not settings.index.exists() and leftovers(settings) == []


def _change_a_seed(settings):
    path = settings.seeds / "gwadar-port.txt"
    path.write_bytes(path.read_bytes().replace(b"opened in 2007", b"opened in 2008"))


def _add_a_seed(settings):
    (settings.seeds / "new-notes.md").write_text("# New notes\n\nThe new port terminal opened in 2024.\n", encoding="utf-8")


def _remove_a_seed(settings):
    (settings.seeds / "cricket-notes.txt").unlink()


def _change_provenance(settings):
    path = settings.seeds / "sources.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["gwadar-port.txt"]["title"] = "Another title"
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("change, reason", [
    (_change_a_seed, "seeds/gwadar-port.txt changed"),
    (_add_a_seed, "seeds/new-notes.md was added"),
    (_remove_a_seed, "seeds/cricket-notes.txt was removed"),
    (_change_provenance, "seeds/sources.json changed"),
])
def test_changed_documents_make_the_index_stale_and_are_rebuilt_when_allowed(tiny_index, fake_embedder, capsys, change, reason):
    settings, built = tiny_index
    change(settings)
    with pytest.raises(IndexStaleError, match=reason):
        load_index(settings, fake_embedder, rebuild_if_stale=False)
    status = index_status(settings)
    assert status["state"] == "stale" and reason in status["stale_reasons"]

    rebuilt = load_index(settings, fake_embedder)
    assert "rebuilding" in capsys.readouterr().err
    assert rebuilt.manifest["sources"] != built.manifest["sources"]
    assert index_status(settings)["state"] == "ok"
    assert load_index(settings, fake_embedder, rebuild_if_stale=False).manifest == rebuilt.manifest
    assert leftovers(settings) == []


def test_rebuilt_index_contains_the_new_text(tiny_index, fake_embedder):
    settings, _ = tiny_index
    _change_a_seed(settings)
    rebuilt = load_index(settings, fake_embedder)
    text = " ".join(c.text for c in rebuilt.chunks)
    assert "opened in 2008" in text and "opened in 2007" not in text


def test_other_chunk_settings_make_the_index_stale(tiny_index, fake_embedder):
    settings, _ = tiny_index
    with pytest.raises(IndexStaleError, match="chunking"):
        load_index(replace(settings, chunk_max_tokens=40), fake_embedder, rebuild_if_stale=False)


def test_another_embedder_makes_the_index_stale(tiny_index):
    settings, _ = tiny_index

    class OtherEmbedder(FakeEmbedder):
        name = "fake/another-model"

    with pytest.raises(IndexStaleError, match="embedder"):
        load_index(settings, OtherEmbedder(), rebuild_if_stale=False)


# --- atomic writes -------------------------------------------------------------------------------------


class BuildInterrupted(Exception):
    pass


def _fail(*args, **kwargs):
    raise BuildInterrupted("disk full")


@pytest.mark.parametrize("where", ["faiss.write_index", "bm25s.BM25.save", "interrupt"])
def test_a_failed_build_leaves_the_old_index_intact_and_no_temporary_folder(tiny_index, fake_embedder, monkeypatch, where):
    import bm25s
    import faiss

    settings, built = tiny_index
    before = snapshot(settings.index)
    _change_a_seed(settings)  # so that a finished build would have changed the files
    if where == "faiss.write_index":
        monkeypatch.setattr(faiss, "write_index", _fail)
        expected = BuildInterrupted
    elif where == "bm25s.BM25.save":
        monkeypatch.setattr(bm25s.BM25, "save", _fail)
        expected = BuildInterrupted
    else:  # Ctrl-C halfway through writing
        def interrupt(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(faiss, "write_index", interrupt)
        expected = KeyboardInterrupt

    with pytest.raises(expected):
        build_index(settings, fake_embedder, progress=False)
    assert snapshot(settings.index) == before
    assert leftovers(settings) == []
    monkeypatch.undo()

    # The old index still loads (it is stale now, which is reported, not hidden).
    with pytest.raises(IndexStaleError):
        load_index(settings, fake_embedder, rebuild_if_stale=False)
    seed = settings.seeds / "gwadar-port.txt"  # put the document back as it was: the old index is current again
    seed.write_bytes(seed.read_bytes().replace(b"opened in 2008", b"opened in 2007"))
    old = load_index(settings, fake_embedder, rebuild_if_stale=False)
    assert [c.chunk_id for c in old.chunks] == [c.chunk_id for c in built.chunks]


def test_a_failed_first_build_leaves_no_index_and_no_temporary_folder(tiny_docs, fake_embedder, monkeypatch):
    import faiss

    monkeypatch.setattr(faiss, "write_index", _fail)
    with pytest.raises(BuildInterrupted):
        build_index(tiny_docs, fake_embedder, progress=False)
    assert not tiny_docs.index.exists()
    assert leftovers(tiny_docs) == []


def test_rebuilding_replaces_the_folder_whole(tiny_index, fake_embedder):
    settings, _ = tiny_index
    (settings.index / "stray-file.txt").write_text("left from an older version")
    build_index(settings, fake_embedder, progress=False)
    assert not (settings.index / "stray-file.txt").exists()
    assert leftovers(settings) == []


# --- status ------------------------------------------------------------------------------------------


def test_status_ok(tiny_index):
    settings, built = tiny_index
    status = index_status(settings)
    assert status["state"] == "ok" and status["up_to_date"] is True and status["stale_reasons"] == []
    assert status["chunks"] == len(built.chunks) and status["documents"] == 3
    assert status["model"] == FakeEmbedder.name and status["dimension"] == 384
    assert status["index_dir"] == str(settings.index)


def test_status_missing(tiny_docs):
    status = index_status(tiny_docs)
    assert status["state"] == "missing" and status["up_to_date"] is False
    assert "no index" in status["problem"]


def test_status_corrupt(tiny_index):
    settings, _ = tiny_index
    (settings.index / DENSE).write_bytes(b"garbage")
    status = index_status(settings)
    assert status["state"] == "corrupt" and status["up_to_date"] is False
    assert "damaged" in status["problem"]


def test_status_stale_with_the_embedder_it_is_asked_about(tiny_index):
    settings, _ = tiny_index

    class OtherEmbedder(FakeEmbedder):
        name = "fake/another-model"

    assert index_status(settings, FakeEmbedder())["state"] == "ok"
    status = index_status(settings, OtherEmbedder())
    assert status["state"] == "stale" and status["stale_reasons"] == ["the embedder model changed"]


def test_the_same_seeds_give_the_same_index_bytes(tmp_path):
    """Rebuilding unchanged seeds must not change the committed index. Python's string hashing
    differs between processes (set order with it), so two processes with different seeds build."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).parent
    write_tiny_documents(tmp_path)
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
              "from conftest import FakeEmbedder, tiny_settings_for; from rag.index import build_index; "
              "build_index(tiny_settings_for(Path(sys.argv[2])).with_overrides(index_dir=Path(sys.argv[3])), FakeEmbedder(), progress=False)")
    for n, hash_seed in enumerate(("1", "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run([sys.executable, "-c", script, str(tests), str(tmp_path), str(tmp_path / f"index{n}")],
                                capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stderr
    first = json.loads((tmp_path / "index0" / MANIFEST).read_text())["files"]
    second = json.loads((tmp_path / "index1" / MANIFEST).read_text())["files"]
    assert first == second and f"{LEXICAL}/vocab.index.json" in first
