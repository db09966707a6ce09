"""The store contract: every store answers the same writes with the same results.

Each case runs on every store: `embedded` (FAISS + bm25s in the catalog's SQLite), `milvus`
(Milvus Lite, the server's engine as a child process, on a file in a temporary folder) and, where
it applies, the `MemoryStore` fake of conftest (no persistence, no transactions, no BM25, exact
words only). The expected results are computed here, independently of every store: exact cosine
ranking for dense search, Lucene BM25 (k1=1.5, b=0.75, bm25s's defaults) for lexical search.

Writes go through the catalog's transaction, as ingestion makes them. Milvus Lite takes about a
second to start: one process serves the module, each test in a collection of its own; the restart
and crash tests start their own.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import rag.bot
import rag.embedding
from conftest import ARTICLE, NOTES, PAPER, FakeEmbedder, MemoryStore, free_port, load_folder, write_tiny_documents
from rag.catalog import Catalog
from rag.chunking import ChunkSettings, chunk_document, searchable_text
from rag.collections import CollectionInfo
from rag.lexical import tokenize
from rag.stores.base import open_store

KINDS = ["embedded", "milvus", "memory"]
EMBEDDER = FakeEmbedder()
K1, B = 1.5, 0.75
QUERIES = ["Gwadar port Chinese funding", "CSF fund Washington Islamabad", "cricket championship trophy Lahore",
           "military training officers IMET", "aid to Pakistan after 2001", "port cargo harbour port"]


# --- the corpus and the expected results ------------------------------------------------------------


def _corpus() -> dict[str, list]:
    """The three tiny documents in small chunks (12 in all), by document key."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="contract-"))
    write_tiny_documents(root)
    settings = ChunkSettings(max_tokens=40, overlap_sentences=0, min_section_tokens=10)
    return {f"doc-{d.source.rsplit('/', 1)[1]}": chunk_document(d, EMBEDDER.count_tokens, settings)
            for d in load_folder(root / "seeds", root)}


CORPUS = _corpus()
PAPER_DOC, NOTES_DOC, PORT_DOC = "doc-aid-review.md", "doc-cricket-notes.txt", "doc-gwadar-port.txt"


def vectors(chunks) -> np.ndarray:
    return EMBEDDER.embed([searchable_text(c) for c in chunks])


def expected_dense(held: dict[str, list], query: str) -> list[tuple[str, float]]:
    """Every chunk by cosine, best first."""
    chunks = [c for cs in held.values() for c in cs]
    scores = vectors(chunks) @ EMBEDDER.embed([query])[0]
    return sorted(((c.chunk_id, float(s)) for c, s in zip(chunks, scores)), key=lambda item: -item[1])


def expected_bm25(held: dict[str, list], tokens: list[str]) -> list[tuple[str, float]]:
    """Every matching chunk by Lucene BM25 as bm25s computes it (a repeated query word counts each
    time), best first."""
    chunks = [c for cs in held.values() for c in cs]
    docs = [tokenize(searchable_text(c)) for c in chunks]
    average = sum(map(len, docs)) / len(docs)
    frequency = {w: sum(w in d for d in docs) for w in set(tokens)}
    scores = []
    for chunk, words in zip(chunks, docs):
        score = 0.0
        for word in tokens:
            tf = words.count(word)
            if tf:
                idf = math.log(1 + (len(docs) - frequency[word] + 0.5) / (frequency[word] + 0.5))
                score += idf * tf / (tf + K1 * (1 - B + B * len(words) / average))
        if score > 0:
            scores.append((chunk.chunk_id, score))
    return sorted(scores, key=lambda item: -item[1])


def assert_same_ranking(got: list[tuple[str, float]], everything: list[tuple[str, float]], k: int, tolerance: float) -> None:
    """The top `k` of the expected ranking `everything`: the same scores within `tolerance`, and the
    same ids wherever a score ties with no other."""
    want = everything[:k]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=tolerance, abs=tolerance), (got, want)
    for rank, (chunk_id, score) in enumerate(want):
        if all(abs(score - other) > 1e-5 for i, (_, other) in enumerate(everything) if i != rank):
            assert got[rank][0] == chunk_id, (rank, got, want)


# --- stores under test ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lite_file(tmp_path_factory):
    """One Milvus Lite process for the module's tests (each test has a collection of its own)."""
    from rag.stores.milvus_lite import lite_start, lite_stop

    path = tmp_path_factory.mktemp("milvus") / "shared.db"
    lite_start(path)
    yield path
    lite_stop(path)


class Handle:
    """A store of one kind on its own catalog, written as ingestion writes (in transactions)."""

    def __init__(self, kind: str, folder: Path, uri: str | None = None):
        self.kind, self.folder = kind, folder
        self.info = CollectionInfo(name=f"contract-{folder.name}"[:60], store=kind, embedder=EMBEDDER.fingerprint(),
                                   store_options={"uri": uri} if uri else {})
        self.catalog = self.store = None
        self.open(writable=True)

    def open(self, *, writable: bool) -> None:
        self.catalog = Catalog(self.folder, writable=writable)
        self.store = MemoryStore() if self.kind == "memory" else open_store(self.folder, self.info, self.catalog, writable=writable)

    def close(self) -> None:
        self.store.close()
        self.catalog.close()

    def reopen(self, *, writable: bool = False) -> None:
        self.close()
        self.open(writable=writable)

    def write(self, held: dict[str, list], *, finish: bool = True) -> None:
        with self.catalog.transaction():
            for doc, chunks in held.items():
                self.store.upsert(doc, chunks, vectors(chunks))
        if finish:
            self.store.finish()

    def delete(self, doc: str) -> None:
        with self.catalog.transaction():
            self.store.delete(doc)

    def all_ids(self, query: str = "pakistan port cricket") -> set[str]:
        """Every chunk id either search can return for a broad query."""
        dense = {cid for cid, _ in self.store.dense_search(EMBEDDER.embed([query])[0], 1000)}
        lexical = {cid for cid, _ in self.store.lexical_search(tokenize(query), 1000)}
        return dense | lexical


def _handle(kind: str, request, tmp_path) -> Handle:
    uri = str(request.getfixturevalue("lite_file")) if kind == "milvus" else None
    handle = Handle(kind, tmp_path / "collection", uri)
    request.addfinalizer(handle.close)
    return handle


@pytest.fixture(params=KINDS)
def store(request, tmp_path) -> Handle:
    return _handle(request.param, request, tmp_path)


@pytest.fixture(params=[k for k in KINDS if k != "memory"])
def real_store(request, tmp_path) -> Handle:
    """The stores that persist, transact and rank by BM25."""
    return _handle(request.param, request, tmp_path)


def ids(results) -> list[str]:
    return [chunk_id for chunk_id, _ in results]


# --- the contract -------------------------------------------------------------------------------------


def test_dense_search_gives_the_exact_cosine_top_k(store):
    store.write(CORPUS)
    for query in QUERIES:
        assert_same_ranking(store.store.dense_search(EMBEDDER.embed([query])[0], 5), expected_dense(CORPUS, query), 5, 1e-5)
    assert len(store.store.dense_search(EMBEDDER.embed(["port"])[0], 100)) == sum(map(len, CORPUS.values()))


def test_lexical_search_gives_bm25_scores_of_pakus_tokens(real_store):
    real_store.write(CORPUS)
    for query in QUERIES:
        tokens = tokenize(query)
        assert_same_ranking(real_store.store.lexical_search(tokens, 5), expected_bm25(CORPUS, tokens), 5, 1e-4)
    assert real_store.store.lexical_search(tokenize("zebra unicorn"), 5) == []
    assert real_store.store.lexical_search([], 5) == []


def test_upsert_replaces_a_documents_chunks_in_both_searches_at_once(store):
    store.write(CORPUS)
    old = CORPUS[PORT_DOC]
    new = [replace(c, chunk_id=f"new{i}", text=c.text.replace("Gwadar", "Pasni").replace("cargo", "freight"))
           for i, c in enumerate(old)]
    store.write({PORT_DOC: new}, finish=False)  # visible before `finish`
    held = {**CORPUS, PORT_DOC: new}
    assert not {c.chunk_id for c in old} & store.all_ids("Gwadar port cargo Pasni freight")
    assert {c.chunk_id for c in new} <= store.all_ids("Gwadar port cargo Pasni freight")
    assert store.store.lexical_search(["gwadar"], 10) == []
    assert ids(store.store.lexical_search(["pasni"], 10))[0] == "new0"
    assert store.store.chunks([c.chunk_id for c in old]) == {}
    assert store.store.documents()[PORT_DOC] == len(new)
    assert_same_ranking(store.store.dense_search(EMBEDDER.embed(["Pasni port"])[0], 5), expected_dense(held, "Pasni port"), 5, 1e-5)
    if store.kind != "memory":
        assert not store.store.knows_word("gwadar") and store.store.knows_word("pasni")
        store.store.finish()  # the replaced rows are gone from the BM25 statistics too
        for query in QUERIES:
            assert_same_ranking(store.store.lexical_search(tokenize(query), 5), expected_bm25(held, tokenize(query)), 5, 1e-4)


def test_upsert_keeps_a_chunk_id_that_the_new_version_keeps(store):
    """A changed file whose passage did not change: the same chunk id under a new document key."""
    store.write(CORPUS)
    kept = CORPUS[PORT_DOC][1]
    with store.catalog.transaction():  # as ingestion replaces a changed file: one transaction
        store.store.delete(PORT_DOC)
        store.store.upsert("doc-port-v2", [kept], vectors([kept]))
    assert store.store.chunks([kept.chunk_id]) == {kept.chunk_id: kept}
    assert ids(store.store.lexical_search(["karachi"], 5)) == [kept.chunk_id]
    assert store.store.documents().get(PORT_DOC) is None and store.store.documents()["doc-port-v2"] == 1


def test_chunks_found_by_a_search_then_replaced_are_read_as_they_are_now(store):
    """A store may keep what a search returned for `chunks`; a write after the search must show."""
    store.write(CORPUS)
    chunk = CORPUS[PAPER_DOC][0]
    assert chunk.chunk_id in ids(store.store.dense_search(vectors([chunk])[0], 3))
    renamed = replace(chunk, source="elsewhere/review.md")
    with store.catalog.transaction():
        store.store.rename(PAPER_DOC, "elsewhere/review.md")
    assert store.store.chunks([chunk.chunk_id]) == {chunk.chunk_id: renamed}
    store.delete(PAPER_DOC)
    assert store.store.chunks([chunk.chunk_id]) == {}


def test_delete_is_visible_at_once(store):
    store.write(CORPUS)
    store.delete(NOTES_DOC)
    gone = {c.chunk_id for c in CORPUS[NOTES_DOC]}
    assert not gone & store.all_ids("cricket championship trophy")
    assert store.store.lexical_search(["cricket"], 10) == []
    assert store.store.chunks(list(gone)) == {}
    assert NOTES_DOC not in store.store.documents()
    if store.kind != "memory":
        assert not store.store.knows_word("cricket")
    store.delete("no-such-document")  # nothing to do, no error


def test_rename_changes_the_source_of_every_chunk_and_nothing_else(store):
    store.write(CORPUS)
    with store.catalog.transaction():
        store.store.rename(PAPER_DOC, "elsewhere/review.md")
    chunks = store.store.chunks([c.chunk_id for c in CORPUS[PAPER_DOC]])
    assert chunks == {c.chunk_id: replace(c, source="elsewhere/review.md") for c in CORPUS[PAPER_DOC]}
    assert store.store.documents()[PAPER_DOC] == len(CORPUS[PAPER_DOC])
    store.store.finish()
    assert_same_ranking(store.store.dense_search(EMBEDDER.embed(["aid to Pakistan"])[0], 5),
                        expected_dense(CORPUS, "aid to Pakistan"), 5, 1e-5)
    if store.kind != "memory":
        assert_same_ranking(store.store.lexical_search(["pakistan", "aid"], 5), expected_bm25(CORPUS, ["pakistan", "aid"]), 5, 1e-4)


def test_chunks_by_id_returns_the_chunks_written_and_leaves_out_missing_ids(store):
    store.write(CORPUS)
    wanted = [c for cs in CORPUS.values() for c in cs][::2]
    assert store.store.chunks([c.chunk_id for c in wanted] + ["missing"]) == {c.chunk_id: c for c in wanted}
    assert store.store.chunks([]) == {}


def test_documents_counts_chunks_per_document(store):
    assert store.store.documents() == {}
    store.write(CORPUS)
    assert store.store.documents() == {doc: len(chunks) for doc, chunks in CORPUS.items()}


@pytest.mark.parametrize("word, known", [
    ("gwadar", True), ("ports", True), ("pakistani", True), ("championshp", True), ("imet", True),
    ("zebra", False), ("harbourmaster", False), ("kerry", False)])
def test_knows_word_exact_folded_prefix_and_typo(real_store, word, known):
    real_store.write(CORPUS)
    assert real_store.store.knows_word(word) is known


def test_a_rolled_back_transaction_leaves_the_store_as_it_was(real_store):
    """A killed `pakus add` rolls the catalog back: the store must show the state before it."""
    real_store.write({PAPER_DOC: CORPUS[PAPER_DOC], NOTES_DOC: CORPUS[NOTES_DOC]})
    before = {q: real_store.store.lexical_search(tokenize(q), 5) for q in QUERIES}
    with pytest.raises(KeyboardInterrupt):
        with real_store.catalog.transaction():
            real_store.store.upsert(PORT_DOC, CORPUS[PORT_DOC], vectors(CORPUS[PORT_DOC]))
            real_store.store.delete(NOTES_DOC)
            real_store.store.rename(PAPER_DOC, "elsewhere/review.md")
            raise KeyboardInterrupt
    held = {PAPER_DOC: CORPUS[PAPER_DOC], NOTES_DOC: CORPUS[NOTES_DOC]}
    assert real_store.store.documents() == {doc: len(chunks) for doc, chunks in held.items()}
    assert store_ids(real_store) == {c.chunk_id for cs in held.values() for c in cs}
    assert real_store.store.chunks([CORPUS[PAPER_DOC][0].chunk_id])[CORPUS[PAPER_DOC][0].chunk_id].source == CORPUS[PAPER_DOC][0].source
    assert real_store.store.knows_word("cricket") and not real_store.store.knows_word("gwadar")
    real_store.reopen(writable=True)  # the next `pakus add` clears what the interrupted one left
    for query, results in before.items():
        assert [(c, pytest.approx(s, rel=1e-4)) for c, s in real_store.store.lexical_search(tokenize(query), 5)] == results


def store_ids(handle: Handle) -> set[str]:
    return {cid for cid, _ in handle.store.dense_search(EMBEDDER.embed(["x"])[0], 1000)}


def test_restart_keeps_everything(real_store, tmp_path):
    if real_store.kind == "milvus":  # a Lite file of its own, so that closing stops its process
        real_store.close()
        real_store = Handle("milvus", tmp_path / "own", str(tmp_path / "own" / "milvus.db"))
    real_store.write(CORPUS)
    real_store.delete(NOTES_DOC)
    real_store.store.finish()
    held = {d: c for d, c in CORPUS.items() if d != NOTES_DOC}
    real_store.reopen(writable=False)
    if real_store.kind == "milvus":
        from rag.stores import milvus_lite

        real_store.close()
        assert str((tmp_path / "own" / "milvus.db").resolve()) not in milvus_lite.lite_users  # its process was stopped
        real_store.open(writable=False)
    assert real_store.store.documents() == {doc: len(chunks) for doc, chunks in held.items()}
    for query in QUERIES:
        assert_same_ranking(real_store.store.dense_search(EMBEDDER.embed([query])[0], 5), expected_dense(held, query), 5, 1e-5)
        assert_same_ranking(real_store.store.lexical_search(tokenize(query), 5), expected_bm25(held, tokenize(query)), 5, 1e-4)
    assert real_store.store.chunks([CORPUS[PORT_DOC][0].chunk_id]) == {CORPUS[PORT_DOC][0].chunk_id: CORPUS[PORT_DOC][0]}
    assert real_store.store.knows_word("gwadar") and not real_store.store.knows_word("cricket")
    if real_store.kind == "milvus":
        real_store.close()


# --- Milvus only: a real crash, the command line, a server that is down ----------------------------------


def test_milvus_after_a_kill_during_a_write_shows_the_committed_state_and_the_next_write_clears_the_rest(tmp_path):
    folder = tmp_path / "killed"
    handle = Handle("milvus", folder, str(folder / "milvus.db"))
    handle.write({PAPER_DOC: CORPUS[PAPER_DOC]})
    handle.close()
    # Another process writes a document, then is killed inside the transaction, as Ctrl-C or a
    # power cut would leave it: the rows are in Milvus, the catalog never committed them.
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import test_store_contract as t
        handle = t.Handle("milvus", t.Path({str(folder)!r}), {str(folder / "milvus.db")!r})
        handle.catalog.db.execute("BEGIN IMMEDIATE")
        handle.store.upsert(t.PORT_DOC, t.CORPUS[t.PORT_DOC], t.vectors(t.CORPUS[t.PORT_DOC]))
        handle.store.delete(t.PAPER_DOC)
        handle.store.send()  # what the catalog calls just before COMMIT; killed before the COMMIT
        assert handle.store.client.query(handle.store.collection, filter="doc == 'doc-gwadar-port.txt'",
                                         output_fields=["count(*)"])[0]["count(*)"] > 0
        os.kill(os.getpid(), 9)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stderr
    wait_until_no_process_serves(folder / "milvus.db")
    handle.open(writable=False)
    try:
        assert handle.store.documents() == {PAPER_DOC: len(CORPUS[PAPER_DOC])}
        assert store_ids(handle) == {c.chunk_id for c in CORPUS[PAPER_DOC]}
        assert handle.store.lexical_search(["gwadar"], 5) == []
        handle.reopen(writable=True)
        rows = handle.store.client.query(handle.store.collection, filter="", output_fields=["count(*)"])[0]["count(*)"]
        assert rows == len(CORPUS[PAPER_DOC])  # the interrupted write's rows are gone from Milvus too
        tokens = tokenize("aid to Pakistan after 2001")
        held = {PAPER_DOC: CORPUS[PAPER_DOC]}
        assert_same_ranking(handle.store.lexical_search(tokens, 5), expected_bm25(held, tokens), 5, 1e-4)
    finally:
        handle.close()


def test_milvus_sends_a_transactions_rows_in_one_request_before_it_commits(request, tmp_path, monkeypatch):
    """Milvus Lite spends about 20 ms on any write request: a batch of documents is one request,
    sent before the catalog commits, so that a committed document always has its rows."""
    handle = _handle("milvus", request, tmp_path)
    requests = []
    upsert = handle.store.client.upsert
    monkeypatch.setattr(handle.store.client, "upsert", lambda *a, **k: (requests.append(len(a[1])), upsert(*a, **k))[1])
    generation = handle.catalog.generation()
    with handle.catalog.transaction():
        for doc, chunks in CORPUS.items():
            handle.store.upsert(doc, chunks, vectors(chunks))
        assert requests == []  # held back while the transaction is open
    assert requests == [sum(len(c) for c in CORPUS.values())] and handle.catalog.generation() == generation + 1
    assert store_ids(handle) == {c.chunk_id for cs in CORPUS.values() for c in cs}


def wait_until_no_process_serves(path: Path, timeout: float = 20) -> None:
    """The killed process's Milvus Lite child stops when it sees its parent's lock go."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        serving = False
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                serving |= str(path) in cmdline.read_bytes().decode(errors="replace")
            except OSError:
                continue
        if not serving:
            return
        time.sleep(0.1)
    raise AssertionError(f"a Milvus Lite process still serves {path}")


@pytest.fixture
def cli_home(tmp_path, monkeypatch):
    """PAKUS_HOME in tmp_path, the fake embedder wherever the CLI loads one, and three documents."""
    for name in list(os.environ):
        if name.startswith("PAKUS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PAKUS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PAKUS_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("PAKUS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(rag.bot, "MiniLMEmbedder", FakeEmbedder)
    monkeypatch.setattr(rag.embedding, "MiniLMEmbedder", FakeEmbedder)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "aid-review.md").write_text(PAPER, encoding="utf-8")
    (docs / "gwadar-port.txt").write_text(ARTICLE, encoding="utf-8")
    (docs / "cricket-notes.txt").write_bytes(NOTES.encode())
    return tmp_path


def pakus(*args: str):
    from rag.cli import main

    return CliRunner().invoke(main, list(args))


def test_pakus_add_store_milvus_end_to_end(cli_home):
    docs = cli_home / "docs"
    result = pakus("add", str(docs), "-c", "notes", "--store", "milvus", "--json")
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in json.loads(result.stdout)} == {"added"}
    folder = cli_home / "home" / "collections" / "notes"
    manifest = json.loads((folder / "collection.json").read_text())
    assert manifest["store"] == "milvus" and manifest["store_options"] == {"uri": "milvus.db"}
    assert (folder / "milvus.db").exists()

    result = pakus("search", "Gwadar port Chinese funding", "-c", "notes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["source"].endswith("gwadar-port.txt")

    again = pakus("add", str(docs), "-c", "notes", "--json")  # the collection remembers its store
    assert again.exit_code == 0 and {r["status"] for r in json.loads(again.stdout)} == {"unchanged"}

    assert pakus("remove", str(docs / "gwadar-port.txt"), "-c", "notes").exit_code == 0
    hits = json.loads(pakus("search", "Gwadar port Chinese funding", "-c", "notes", "--json").stdout)
    assert not any(h["source"].endswith("gwadar-port.txt") for h in hits)


def test_a_milvus_server_that_is_down_is_one_line_naming_the_uri_within_seconds(cli_home, monkeypatch):
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("PAKUS_MILVUS_URI", uri)
    started = time.perf_counter()
    result = pakus("add", str(cli_home / "docs"), "-c", "remote", "--store", "milvus")
    assert time.perf_counter() - started < 10
    assert result.exit_code not in (0, None) and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pakus: error: ") and uri in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_milvus_lite_dying_mid_session_is_one_line_naming_the_file(tmp_path):
    from rag.stores.milvus_lite import MilvusError, _import_milvus_lite

    path = tmp_path / "own" / "milvus.db"
    handle = Handle("milvus", tmp_path / "own", str(path))
    try:
        handle.write(CORPUS)
        _import_milvus_lite().server_manager_instance._servers[str(path.resolve())]._p.kill()  # as the OOM killer would
        started = time.perf_counter()
        with pytest.raises(MilvusError, match=str(path)) as caught:
            handle.store.lexical_search(["port"], 3)
        assert time.perf_counter() - started < 5 and "\n" not in str(caught.value)
    finally:
        handle.close()


def test_a_milvus_lite_file_open_in_another_process_is_a_clear_error(tmp_path):
    """Milvus Lite serves one process per file: a second one is told why, and what to do."""
    folder = tmp_path / "busy"
    handle = Handle("milvus", folder, str(folder / "milvus.db"))
    try:
        script = textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            import test_store_contract as t
            from rag.errors import PakusError
            try:
                t.Handle("milvus", t.Path({str(folder)!r}), {str(folder / "milvus.db")!r})
            except PakusError as exc:
                print(exc)
        """)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert "is open in another process" in result.stdout and "Milvus server" in result.stdout, result.stdout + result.stderr
        assert result.stderr == ""
    finally:
        handle.close()


@pytest.mark.parametrize("uri, problem", [("index.sqlite", "ending in .db"), ("my milvus.db", "file name"),
                                          ("x" * 40 + ".db", "file name")])
def test_a_milvus_uri_that_is_neither_a_server_nor_a_lite_file_is_refused(tmp_path, uri, problem):
    from rag.errors import ConfigError
    from rag.stores.milvus import is_server
    from rag.stores.milvus_lite import lite_path

    assert is_server("http://localhost:19530") and is_server("https://milvus.example.org") and not is_server("milvus.db")
    assert lite_path(tmp_path, "milvus.db") == tmp_path / "milvus.db"
    assert lite_path(tmp_path, "/data/pakus.db") == Path("/data/pakus.db")
    with pytest.raises(ConfigError, match=problem):
        lite_path(tmp_path, uri)
