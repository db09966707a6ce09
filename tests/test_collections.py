"""Collections on fakes: add, sync, remove, incremental work, damage and bad input.

The embedder is the deterministic fake; the converters, the catalog, the store (FAISS + bm25s)
and the files are real, in a temporary folder.
"""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from conftest import ARTICLE, NOTES, PAPER, FakeEmbedder, tiny_settings_for
from rag.collections import CollectionMissingError, list_collections, list_sources, open_collection, read_info, set_k, validate_name
from rag.errors import ConfigError, IndexCorruptError, InvalidInputError
from rag.index import build_seeds, index_status, stale_reasons
from rag.ingest import CollectionBusyError, add, remove, sync, write_lock
from rag.lexical import tokenize


class CountingEmbedder(FakeEmbedder):
    """Counts the texts embedded: the measure of work an add did."""

    def __init__(self):
        super().__init__()
        self.texts = 0

    def embed(self, texts, *, progress=False):
        self.texts += len(texts)
        return super().embed(texts, progress=progress)


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "aid-review.md").write_text(PAPER, encoding="utf-8")
    (folder / "sub" / "gwadar-port.txt").write_text(ARTICLE, encoding="utf-8")
    (folder / "cricket-notes.txt").write_bytes(NOTES.encode())
    (folder / ".hidden.md").write_text("# Hidden\n\nNever indexed.\n", encoding="utf-8")
    return folder


@pytest.fixture
def settings(tmp_path):
    return tiny_settings_for(tmp_path, home=tmp_path / "home", collection="mine")


@pytest.fixture
def embedder():
    return CountingEmbedder()


def statuses(reports):
    return {os.path.basename(r.source): r.status for r in reports}


def search_sources(settings, embedder, query, k=20):
    from rag.retrieval import Retriever

    opened = open_collection(settings)
    try:
        retriever = Retriever(opened.store, embedder, opened.catalog.metadata_by_source())
        return [h.source for h in retriever.search(query, k)]
    finally:
        opened.close()


def chunk_count(settings):
    opened = open_collection(settings)
    try:
        return sum(opened.store.documents().values())
    finally:
        opened.close()


def test_add_indexes_a_folder_recursively_skipping_hidden_files(settings, docs, embedder):
    reports = add([docs], settings, embedder=embedder)
    assert statuses(reports) == {"aid-review.md": "added", "gwadar-port.txt": "added", "cricket-notes.txt": "added"}
    assert all(r.chunks for r in reports)
    records = list_sources(settings)
    assert {os.path.basename(r["source"]) for r in records} == {"aid-review.md", "gwadar-port.txt", "cricket-notes.txt"}
    paper = next(r for r in records if r["source"].endswith("aid-review.md"))
    assert paper["title"] == "A REVIEW OF AID TO PAKISTAN" and paper["format"] == "markdown" and len(paper["sha256"]) == 64
    assert any(s.endswith("gwadar-port.txt") for s in search_sources(settings, embedder, "Gwadar port Chinese funding", 3))


def test_a_second_add_of_unchanged_files_embeds_nothing(settings, docs, embedder):
    add([docs], settings, embedder=embedder)
    before = embedder.texts
    reports = add([docs], settings, embedder=embedder)
    assert set(statuses(reports).values()) == {"unchanged"}
    assert embedder.texts == before


def test_touched_but_unchanged_files_are_hashed_not_embedded(settings, docs, embedder):
    add([docs], settings, embedder=embedder)
    before = embedder.texts
    os.utime(docs / "aid-review.md", ns=(1, 1))
    assert statuses(add([docs], settings, embedder=embedder))["aid-review.md"] == "unchanged"
    assert embedder.texts == before


def test_changing_one_file_re_embeds_only_that_file(settings, docs, embedder):
    add([docs], settings, embedder=embedder)
    before = embedder.texts
    path = docs / "sub" / "gwadar-port.txt"
    path.write_text(ARTICLE.replace("opened in 2007", "opened in 2008"), encoding="utf-8")
    reports = add([docs], settings, embedder=embedder)
    assert statuses(reports)["gwadar-port.txt"] == "updated"
    assert statuses(reports)["aid-review.md"] == "unchanged"
    changed = next(r for r in reports if r.status == "updated")
    assert embedder.texts - before == changed.chunks
    opened = open_collection(settings)
    try:
        document = opened.catalog.document(changed.source)
        assert "opened in 2008" in document.text
        texts = " ".join(c.text for c in opened.store.chunks([cid for cid, _ in opened.store.dense_search(
            embedder.embed(["Gwadar port opened"])[0], 50)]).values())
        assert "opened in 2007" not in texts
    finally:
        opened.close()


def test_remove_deletes_exactly_the_documents_chunks_from_both_indexes(settings, docs, embedder):
    reports = add([docs], settings, embedder=embedder)
    total = chunk_count(settings)
    gwadar = next(r for r in reports if r.source.endswith("gwadar-port.txt"))
    assert [r.status for r in remove([gwadar.source], settings, embedder=embedder)] == ["removed"]
    assert chunk_count(settings) == total - gwadar.chunks
    assert not any(s.endswith("gwadar-port.txt") for s in search_sources(settings, embedder, "Gwadar port cargo"))
    opened = open_collection(settings)
    try:
        assert opened.store.lexical_search(tokenize("Gwadar"), 10) == []
    finally:
        opened.close()


def test_remove_by_folder_and_unknown_names(settings, docs, embedder):
    add([docs], settings, embedder=embedder)
    reports = remove([str(docs / "sub"), "no-such-file.md"], settings, embedder=embedder)
    assert [(os.path.basename(r.source), r.status, r.failed) for r in reports] == [
        ("no-such-file.md", "skipped", True), ("gwadar-port.txt", "removed", False)]


def test_sync_mirrors_the_folder(settings, docs, embedder):
    sync(docs, settings, embedder=embedder)
    (docs / "cricket-notes.txt").unlink()
    (docs / "new.md").write_text("# New\n\nThe library opened a reading room in 2024.\n", encoding="utf-8")
    reports = sync(docs, settings, embedder=embedder)
    assert statuses(reports) == {"aid-review.md": "unchanged", "gwadar-port.txt": "unchanged", "new.md": "added",
                                 "cricket-notes.txt": "removed"}
    opened = open_collection(settings)
    try:
        assert stale_reasons(opened, settings, embedder) == []
        (docs / "later.md").write_text("# Later\n\nA later note.\n", encoding="utf-8")
        assert any("later.md was added" in r for r in stale_reasons(opened, settings, embedder))
    finally:
        opened.close()


def test_the_same_content_under_two_names_is_indexed_once_and_listed_twice(settings, docs, embedder):
    (docs / "copy-of-notes.txt").write_bytes(NOTES.encode())
    reports = add([docs], settings, embedder=embedder)
    twins = [r for r in reports if r.source.endswith(("copy-of-notes.txt", "cricket-notes.txt"))]
    assert [r.status for r in twins] == ["added", "added"]
    second = next(r for r in twins if r.reason)
    assert "same content as" in second.reason and not second.chunks
    records = list_sources(settings)
    notes = [r for r in records if r["title"] == "Cricket notes"]
    assert len(notes) == 1 and len(notes[0]["also_at"]) == 1
    # Removing one name keeps the document under the other.
    remove([notes[0]["source"]], settings, embedder=embedder)
    remaining = [r for r in list_sources(settings) if r["title"] == "Cricket notes"]
    assert len(remaining) == 1 and remaining[0]["source"] == notes[0]["also_at"][0]
    assert chunk_count(settings) > 0
    assert any(s == remaining[0]["source"] for s in search_sources(settings, embedder, "cricket championship trophy"))


@pytest.mark.parametrize("make, reason", [
    (lambda d: d / "missing.md", "no such file"),
    (lambda d: _write(d / "table.xlsx", b"PK\x03\x04 not a document"), "unsupported format"),
    (lambda d: _write(d / "empty.md", b""), "empty file"),
    (lambda d: _write(d / "binary.txt", bytes(range(256)) * 40), "not text"),
])
def test_bad_files_are_reported_and_the_others_kept(settings, docs, embedder, make, reason):
    bad = make(docs.parent)
    reports = add([docs, bad], settings, embedder=embedder)
    failed = [r for r in reports if r.failed]
    assert len(failed) == 1 and reason in failed[0].reason and "\n" not in failed[0].reason
    assert sum(r.status == "added" for r in reports) == 3


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_unsupported_files_inside_a_folder_are_skipped_not_failed(settings, docs, embedder):
    (docs / "budget.xlsx").write_bytes(b"PK\x03\x04")
    reports = add([docs], settings, embedder=embedder)
    skipped = next(r for r in reports if r.source.endswith("budget.xlsx"))
    assert skipped.status == "skipped" and not skipped.failed and ".pdf" in skipped.reason


def test_a_file_over_the_size_limit_is_refused(tmp_path, docs, embedder):
    settings = tiny_settings_for(tmp_path, home=tmp_path / "home", collection="mine", max_file_mb=1)
    big = _write(docs / "big.txt", b"word " * 300_000)
    reports = add([big], settings, embedder=embedder)
    assert reports[0].failed and "over the 1 MB limit" in reports[0].reason and "PAKUS_MAX_FILE_MB" in reports[0].reason


def test_a_symlink_loop_ends(settings, docs, embedder):
    os.symlink(docs, docs / "sub" / "loop")
    reports = add([docs], settings, embedder=embedder)
    assert sum(r.status == "added" for r in reports) == 3


def test_a_folder_with_no_supported_files_adds_nothing(settings, tmp_path, embedder):
    folder = tmp_path / "sheets"
    folder.mkdir()
    (folder / "a.xlsx").write_bytes(b"PK")
    reports = add([folder], settings, embedder=embedder)
    assert [r.status for r in reports] == ["skipped"]


@pytest.mark.parametrize("name", ["../up", "a/b", ".hidden", "", "x" * 65, "a b"])
def test_collection_names_are_checked(name):
    with pytest.raises(ConfigError, match="invalid collection name"):
        validate_name(name)


def test_a_missing_collection_is_one_clear_error(settings):
    with pytest.raises(CollectionMissingError, match="pakus add PATH -c mine"):
        open_collection(settings)


def test_collections_are_listed_and_deleted(settings, docs, embedder):
    from rag.collections import delete

    add([docs], settings, embedder=embedder)
    records = {r["name"]: r for r in list_collections(settings)}
    assert records["mine"]["documents"] == 3 and records["mine"]["store"] == "embedded"
    delete(settings, "mine")
    assert "mine" not in {r["name"] for r in list_collections(settings)}
    with pytest.raises(InvalidInputError):
        delete(settings, "seeds")


def test_a_collection_k_is_used_by_its_bot_unless_the_settings_say_otherwise(settings, docs, embedder):
    from rag.bot import Bot
    from rag.catalog import kept_manifest

    add([docs], settings, embedder=embedder)
    assert Bot(settings, embedder=embedder).k == 2
    set_k(settings, "mine", 3)
    folder = settings.home / "collections" / "mine"
    assert read_info(folder).k == 3 and kept_manifest(folder)["k"] == 3  # a damaged manifest is restored with it
    assert Bot(settings, embedder=embedder).k == 3
    assert Bot(settings.with_overrides(k=1), embedder=embedder).k == 1
    add([docs], settings, embedder=embedder, force=True)  # rebuilding keeps the setting
    assert read_info(folder).k == 3
    with write_lock(folder, "mine"), pytest.raises(CollectionBusyError):
        set_k(settings, "mine", 4)
    set_k(settings, "mine", None)
    assert Bot(settings, embedder=embedder).k == 2


def test_a_second_writer_is_refused_while_one_is_working(settings, docs, embedder):
    from rag.collections import directory

    with write_lock(directory(settings), "mine"):
        with pytest.raises(CollectionBusyError, match="another pakus process"):
            add([docs], settings, embedder=embedder)


def test_an_add_that_fails_midway_keeps_what_was_committed_and_the_next_carries_on(settings, docs, embedder, monkeypatch):
    import rag.ingest

    monkeypatch.setattr(rag.ingest, "_BATCH_CHUNKS", 1)  # commit after every file
    calls = {"n": 0}
    real_embed = embedder.embed

    def failing(texts, progress=False):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_embed(texts, progress=progress)

    monkeypatch.setattr(embedder, "embed", failing)
    with pytest.raises(KeyboardInterrupt):
        add([docs], settings, embedder=embedder)
    assert len(list_sources(settings)) == 1  # the first file, whole; nothing of the second
    monkeypatch.setattr(embedder, "embed", real_embed)
    reports = add([docs], settings, embedder=embedder)
    assert sorted(r.status for r in reports) == ["added", "added", "unchanged"]
    assert len(list_sources(settings)) == 3


def test_queries_read_a_collection_whose_search_files_were_not_written(settings, docs, embedder):
    add([docs], settings, embedder=embedder)
    folder = open_collection(settings).folder
    for search in folder.glob("search-*"):
        import shutil

        shutil.rmtree(search)
    assert any(s.endswith("aid-review.md") for s in search_sources(settings, embedder, "Coalition Support Fund", 3))


def test_a_damaged_catalog_is_reported_not_used(settings, docs, embedder):
    add([docs], settings, embedder=embedder)
    path = open_collection(settings).folder / "catalog.sqlite"
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(IndexCorruptError, match="damaged"):
        open_collection(settings)
    assert index_status(settings)["state"] == "corrupt"


def test_changed_settings_remake_every_document(tmp_path, docs, embedder):
    settings = tiny_settings_for(tmp_path, home=tmp_path / "home", collection="mine")
    add([docs], settings, embedder=embedder)
    smaller = tiny_settings_for(tmp_path, home=tmp_path / "home", collection="mine", chunk_max_tokens=32)
    opened = open_collection(smaller)
    try:
        assert any("chunk settings changed" in r for r in stale_reasons(opened, smaller, embedder))
    finally:
        opened.close()
    reports = add([docs], smaller, embedder=embedder)
    assert {r.status for r in reports} == {"updated"}
    assert json.loads((open_collection(smaller).folder / "collection.json").read_text())["chunking"]["max_tokens"] == 32


def test_the_seeds_collection_is_built_from_the_seeds_folder(tiny_docs, fake_embedder):
    reports = build_seeds(tiny_docs, fake_embedder)
    assert sorted(r.source for r in reports) == ["seeds/aid-review.md", "seeds/cricket-notes.txt", "seeds/gwadar-port.txt"]
    status = index_status(tiny_docs, fake_embedder)
    assert status["state"] == "ok" and status["documents"] == 3
    # sources.json gives titles and provenance.
    titles = {r["source"]: r["title"] for r in list_sources(tiny_docs)}
    assert titles["seeds/gwadar-port.txt"] == "Gwadar port and regional trade"
    (tiny_docs.seeds / "cricket-notes.txt").unlink()
    status = index_status(tiny_docs, fake_embedder)
    assert status["state"] == "stale" and "seeds/cricket-notes.txt was removed" in status["stale_reasons"]
    assert status["refresh"] == "pakus index build"


def test_a_query_on_a_stale_collection_answers_and_says_how_to_refresh(tiny_index, fake_embedder, capsys):
    from rag.bot import Bot

    settings, _ = tiny_index
    (settings.seeds / "cricket-notes.txt").write_text("Changed notes.\n", encoding="utf-8")
    hits = Bot(settings, embedder=fake_embedder).search("Gwadar port", 2)
    assert hits
    err = capsys.readouterr().err
    assert "out of date" in err and "seeds/cricket-notes.txt changed" in err and "pakus index build" in err


def test_the_catalog_commits_atomically(settings, docs, embedder):
    add([docs], settings, embedder=embedder)
    path = open_collection(settings).folder / "catalog.sqlite"
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    files = db.execute("SELECT count(*) FROM files").fetchone()[0]
    documents = db.execute("SELECT count(*) FROM documents").fetchone()[0]
    chunk_docs = db.execute("SELECT count(DISTINCT doc) FROM chunks").fetchone()[0]
    assert files == documents == chunk_docs == 3
