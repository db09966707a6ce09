"""Faults while an index is written or read, done for real in a temporary project: a writer
killed with SIGKILL at each step (embedding, inside a batch's transaction, while writing the
search files, before their rename), a read-only project, a full disk, two writers at once, a
document removed while a query runs, and damaged files inside a collection's folder.

What must hold every time: the collection stays queryable (as it was before the batch being
written, or with a warning), nothing half-written is read, the next writer carries on without
redoing committed work and clears what was left, and damage is reported in one line with the
command that repairs it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess

import pytest

from faultkit import (Project, cli, clutter, file_size_limit, kill, project, read_only_wrapper,  # noqa: F401 - fixtures
                      search_sources, small_disk)

GO = "go"


def sources(project: Project, collection: str) -> list[str]:  # noqa: F811
    from rag.collections import list_sources

    return sorted(d["source"].rsplit("/", 1)[-1] for d in list_sources(project.settings(collection=collection)))


def embedded_texts(log) -> int:
    return sum(int(n) for n in log.read_text().split()) if log.exists() else 0


def assert_queryable(cli, collection: str, *, warns: str | None = None) -> str:
    """A search answers (exit 0, hits) with no error; returns what it printed on stderr."""
    result = cli("search", "Gwadar port Coalition Support Fund cricket", "-c", collection, "-k", "3", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout), "no hits"
    assert "error" not in result.stderr
    if warns:
        assert warns in result.stderr, result.stderr
    return result.stderr


def integrity(folder) -> str:
    db = sqlite3.connect(folder / "catalog.sqlite")
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


# --- killed writers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["add", "sync"])
def test_a_writer_killed_while_embedding_keeps_the_committed_batches_and_the_next_run_carries_on(
        project, cli, monkeypatch, command):  # noqa: F811
    import rag.embedding
    from conftest import FakeEmbedder

    assert cli("add", project.docs / "cricket-notes.txt", "-c", "notes").exit_code == 0
    # One batch per file; killed while embedding the second file of this run.
    kill(project.start_and_stop_at("embed:2", command, str(project.docs), "-c", "notes", PAKUS_FAKE_BATCH_CHUNKS="1"))
    folder = project.collection("notes")
    assert sources(project, "notes") == ["aid-review.md", "cricket-notes.txt"]  # the batch before the kill, whole
    assert clutter(folder) == [] and integrity(folder) == "ok"
    assert_queryable(cli, "notes")
    embedded = []

    class Counting(FakeEmbedder):
        def embed(self, texts, *, progress=False):
            embedded.extend(texts)
            return super().embed(texts, progress=progress)

    monkeypatch.setattr(rag.embedding, "MiniLMEmbedder", Counting)
    result = cli(command, project.docs, "-c", "notes", "--json")
    assert result.exit_code == 0, result.output
    statuses = {r["source"].rsplit("/", 1)[-1]: r["status"] for r in json.loads(result.stdout)}
    assert statuses == {"aid-review.md": "unchanged", "cricket-notes.txt": "unchanged", "gwadar-port.txt": "added"}
    assert len(embedded) == 1  # the one chunk of the one file not committed before
    assert sorted(p.name for p in folder.iterdir()) == ["catalog.sqlite", "collection.json", "search-3"]


@pytest.mark.parametrize("spill", [False, True], ids=["journal-unsynced", "hot-journal"])
def test_a_writer_killed_inside_a_transaction_leaves_the_state_before_the_batch(project, cli, spill):  # noqa: F811
    """With `spill`, the batch had spilled into the database file (as a large batch does) and the
    kill leaves a hot journal: every query then failed ("attempt to write a readonly database",
    reported as a damaged collection) until the next writer. Now the reader rolls it back."""
    for path in project.seeds.glob("*.txt"):
        path.write_text(path.read_text() + "\nMore about the Khyber Mail train.\n" * 40)
    before = sources(project, "seeds")
    kill(project.start_and_stop_at("transaction:2", "index", "build", "--force",
                                   **({"PAKUS_FAKE_CACHE_PAGES": "2"} if spill else {})))
    assert (project.index / "catalog.sqlite-journal").exists()
    assert_queryable(cli, "seeds", warns="out of date")  # the seeds changed, and were not indexed
    assert sources(project, "seeds") == before and integrity(project.index) == "ok"
    if spill:  # rolled back by the first reader (an unsynced journal is harmless: the next writer drops it)
        assert not (project.index / "catalog.sqlite-journal").exists()
    assert cli("index", "build").exit_code == 0
    assert cli("index", "status").exit_code == 0
    assert clutter(project.index) == []


def test_a_hot_journal_in_a_read_only_project_is_read_through_a_private_copy(project):  # noqa: F811
    for path in project.seeds.glob("*.txt"):
        path.write_text(path.read_text() + "\nMore about the Khyber Mail train.\n" * 40)
    kill(project.start_and_stop_at("transaction:2", "index", "build", "--force", PAKUS_FAKE_CACHE_PAGES="2"))
    journal = (project.index / "catalog.sqlite-journal").read_bytes()
    result = project.pakus("search", "Gwadar port", "-k", "1", "--json", wrap=read_only_wrapper(project.root))
    err = result.stderr.decode()
    assert result.returncode == 0 and json.loads(result.stdout), err
    assert "left mid-write" in err and "with write access" in err
    assert (project.index / "catalog.sqlite-journal").read_bytes() == journal  # nothing written


@pytest.mark.parametrize("point, command", [
    ("search-write", ["add", "DOCS", "-c", "notes"]),
    ("search-rename", ["add", "DOCS", "-c", "notes"]),
    ("search-renamed", ["add", "DOCS", "-c", "notes"]),
    ("search-write", ["index", "build", "--force"]),
])
def test_a_writer_killed_while_writing_the_search_files_leaves_a_queryable_collection(project, cli, point, command):  # noqa: F811
    """The batch is committed; its search files are not: queries build them in memory from the
    catalog (no window without an index), and the next writer, even one with nothing to add,
    writes them and removes the temporary folder (and an older generation left behind: a writer
    with nothing to write left it there for good)."""
    command = [str(project.docs) if part == "DOCS" else part for part in command]
    collection = command[-1] if command[0] == "add" else "seeds"
    if collection != "seeds":  # an earlier generation, as any collection but a new one has
        assert cli("add", project.docs / "cricket-notes.txt", "-c", collection).exit_code == 0
    kill(project.start_and_stop_at(point, *command))
    folder = project.collection(collection)
    if point == "search-renamed":  # the new generation is in place; the old one was not removed yet
        assert len(list(folder.glob("search-*"))) == 2
    else:
        assert any(name.startswith(".tmp-search-") for name in clutter(folder))
    assert len(sources(project, collection)) == 3  # committed before the search files
    assert_queryable(cli, collection)
    next_writer = ["add", project.docs / "gwadar-port.txt", "-c", collection] if collection != "seeds" else ["index", "build"]
    assert cli(*next_writer).exit_code == 0
    assert clutter(folder) == []
    assert [p.name for p in folder.glob("search-*")] == [f"search-{_generation(folder)}"]


def _generation(folder) -> int:
    db = sqlite3.connect(folder / "catalog.sqlite")
    try:
        return int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
    finally:
        db.close()


# --- read-only project -------------------------------------------------------------------------------------


def test_a_read_only_project_with_a_stale_index_answers_with_a_warning(project):  # noqa: F811
    """Was: 11 s of embedding, then "unexpected error: PermissionError ... .index.lock"."""
    (project.seeds / "cricket-notes.txt").write_text("Cricket notes\n\nThe team lost the final in Karachi.\n")
    wrap = read_only_wrapper(project.root)
    ask = project.pakus("ask", "What is the Coalition Support Fund?", "--json", wrap=wrap,
                        PAKUS_FAKE_REPLY="The Coalition Support Fund (CSF) reimbursed Pakistan's army for operating costs [{csf}].")
    assert ask.returncode == 0 and json.loads(ask.stdout)["answered"] is True, ask.stderr.decode()
    assert "out of date (seeds/cricket-notes.txt changed)" in ask.stderr.decode()
    build = project.pakus("index", "build", wrap=wrap)
    assert build.returncode == 1 and build.stderr.decode().startswith("pakus: error: cannot change collection 'seeds'")
    assert "not writable" in build.stderr.decode() and len(build.stderr.decode().splitlines()) == 1


# --- a full disk ---------------------------------------------------------------------------------------------


def big_folder(project: Project, files: int = 12):  # noqa: F811
    folder = project.root / "big"
    folder.mkdir()
    for n in range(files):
        (folder / f"report-{n}.txt").write_text(f"Report {n}\n\n" + " ".join(
            f"The port of Gwadar handled cargo number {n * 1000 + i} in the year {1990 + i % 30}." for i in range(600)))
    return folder


def assert_one_error_line(stderr: str, starts: str) -> None:
    errors = [line for line in stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(starts), stderr
    assert "unexpected error" not in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("limit", [30_000, 1_500_000])
def test_a_file_size_limit_while_adding_is_one_line_and_the_collection_keeps_what_was_committed(project, cli, limit):  # noqa: F811
    """Was "unexpected error: OperationalError: disk I/O error", and on a small limit "cannot
    rollback - no transaction is active", which hid the cause."""
    assert cli("add", project.docs, "-c", "notes").exit_code == 0
    big = big_folder(project)
    result = project.pakus("add", str(big), "-c", "notes", preexec_fn=file_size_limit(limit))
    assert result.returncode == 1
    assert_one_error_line(result.stderr.decode(), "pakus: error: cannot write collection 'notes'")
    assert "free some disk space" in result.stderr.decode()
    folder = project.collection("notes")
    assert clutter(folder) == [] and integrity(folder) == "ok"
    assert {"aid-review.md", "cricket-notes.txt", "gwadar-port.txt"} <= set(sources(project, "notes"))
    assert_queryable(cli, "notes")
    assert cli("add", big, "-c", "notes").exit_code == 0 and len(sources(project, "notes")) == 15


def test_a_full_disk_while_adding_is_one_line_and_the_collection_keeps_what_was_committed(project, cli):  # noqa: F811
    assert cli("add", project.docs, "-c", "notes").exit_code == 0
    big = big_folder(project)
    saved = project.root / "saved-home"
    shutil.copytree(project.home, saved)
    with small_disk(project.home, "600k"):
        shutil.copytree(saved, project.home, dirs_exist_ok=True)
        result = cli("add", big, "-c", "notes")
        assert result.exit_code == 1
        assert_one_error_line(result.stderr, "pakus: error: cannot write collection 'notes'")
        folder = project.collection("notes")
        assert clutter(folder) == [] and integrity(folder) == "ok"
        assert {"aid-review.md", "cricket-notes.txt", "gwadar-port.txt"} <= set(sources(project, "notes"))
        assert_queryable(cli, "notes")


# --- two writers, a writer and a reader --------------------------------------------------------------------


def test_a_second_add_while_one_is_running_is_refused_in_one_line_and_neither_corrupts(project, cli):  # noqa: F811
    go = project.root / GO
    first = project.start_and_stop_at("embed", "add", str(project.docs), "-c", "notes", PAKUS_FAKE_GO=str(go))
    second = cli("add", project.docs / "cricket-notes.txt", "-c", "notes")
    assert second.exit_code == 1 and second.stderr.splitlines() == [
        "pakus: error: collection 'notes' is being changed by another pakus process; try again when it has finished"]
    assert_queryable(cli, "seeds")  # other collections are not held up
    go.touch()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err.decode()
    assert sources(project, "notes") == ["aid-review.md", "cricket-notes.txt", "gwadar-port.txt"]
    assert integrity(project.collection("notes")) == "ok"
    assert cli("add", project.docs / "cricket-notes.txt", "-c", "notes").exit_code == 0


def test_a_document_removed_while_a_query_runs(project, cli):  # noqa: F811
    assert cli("add", project.docs, "-c", "notes").exit_code == 0
    go = project.root / GO
    query = project.start_and_stop_at("query", "ask", "What is the Coalition Support Fund?", "-c", "notes", "--json",
                                      PAKUS_FAKE_GO=str(go),
                                      PAKUS_FAKE_REPLY="The Coalition Support Fund (CSF) reimbursed Pakistan's army for operating costs [{csf}].")
    removed = cli("remove", project.docs / "aid-review.md", "-c", "notes")
    assert removed.exit_code == 0, removed.output
    go.touch()
    out, err = query.communicate(timeout=60)
    assert query.returncode == 0, err.decode()
    answer = json.loads(out)
    assert answer["answered"] and answer["citations"][0]["source"].endswith("aid-review.md")  # what it had retrieved
    assert sources(project, "notes") == ["cricket-notes.txt", "gwadar-port.txt"]
    assert "aid-review.md" not in " ".join(search_sources(project, "Coalition Support Fund", "notes"))


# --- damaged files -------------------------------------------------------------------------------------------


def _search_folder(folder):
    [search] = folder.glob("search-*")
    return search


DAMAGE = {
    "catalog garbage": lambda f: (f / "catalog.sqlite").write_bytes(b"garbage" * 1000),
    "catalog truncated": lambda f: (f / "catalog.sqlite").write_bytes((f / "catalog.sqlite").read_bytes()[:6000]),
    "catalog deleted": lambda f: (f / "catalog.sqlite").unlink(),
    "faiss garbage": lambda f: (_search_folder(f) / "dense.faiss").write_bytes(b"junk"),
    "faiss truncated": lambda f: (_search_folder(f) / "dense.faiss").write_bytes((_search_folder(f) / "dense.faiss").read_bytes()[:100]),
    "bm25 truncated": lambda f: [p.write_bytes(p.read_bytes()[:10]) for p in (_search_folder(f) / "bm25").iterdir()],
    "chunk ids wrong": lambda f: (_search_folder(f) / "chunk_ids.json").write_text('["x"]'),
    "search folder deleted": lambda f: shutil.rmtree(_search_folder(f)),
    "manifest garbage": lambda f: (f / "collection.json").write_text("{ not json"),
    "manifest empty": lambda f: (f / "collection.json").write_text(""),
}


@pytest.mark.parametrize("collection", ["seeds", "notes"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_file_in_a_collection_is_reported_with_the_command_that_repairs_it(project, cli, collection, damage):  # noqa: F811
    if collection == "notes":
        assert cli("sync", project.docs, "-c", "notes").exit_code == 0
    folder = project.collection(collection)
    DAMAGE[damage](folder)
    doctor = cli("doctor", "--quick", "--json")
    assert doctor.exit_code == 1
    [finding] = [f for f in json.loads(doctor.stdout)["findings"] if f["check"] == f"collection {collection!r}" and not f["ok"]]
    search = cli("search", "Gwadar port", "-c", collection, "-k", "1")
    assert "unexpected error" not in search.stderr and search.exception is None or isinstance(search.exception, SystemExit)
    if damage.startswith("catalog"):
        # The catalog is the truth; nothing can answer without it. One line, naming the rebuild.
        rebuild = ["index", "build", "--force"] if collection == "seeds" else ["sync", project.docs, "-c", "notes", "--force"]
        assert search.exit_code == 1 and len(search.stderr.splitlines()) == 1 and "damaged" in search.stderr
        assert " ".join(map(str, ["pakus", *rebuild])) in search.stderr
        assert finding["fix"] == " ".join(map(str, ["pakus", *rebuild]))
        repair = cli(*rebuild)
        assert repair.exit_code == 0, repair.output
        assert "was set aside" in repair.stderr or damage == "catalog deleted"
    else:
        # Queryable meanwhile, with a warning naming the repair; the repair needs no document.
        assert search.exit_code == 0 and search.stdout.startswith("[1] Gwadar port"), search.output
        if damage != "search folder deleted":  # that one is the normal state after a killed writer
            assert "pakus doctor --repair" in search.stderr
        assert finding["fix"] == "pakus doctor --repair"
        repair = cli("doctor", "--quick", "--repair", "--json")
        assert repair.exit_code == 0, repair.stdout
        assert any(f["repaired"] for f in json.loads(repair.stdout)["findings"])
    assert "warning" not in assert_queryable(cli, collection)
    assert cli("doctor", "--quick").exit_code == 0


def test_a_catalog_locked_by_a_writer_for_long_is_busy_not_damaged(project, cli, monkeypatch):  # noqa: F811
    """A writer holding the database past a reader's wait was reported as a damaged collection,
    with a rebuild as the fix."""
    import functools

    real_connect = sqlite3.connect
    writer = real_connect(project.index / "catalog.sqlite", isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")  # what a writer holds while it commits a large batch
    try:
        with monkeypatch.context() as patch:
            patch.setattr(sqlite3, "connect", functools.partial(real_connect, timeout=0.2))  # not the usual 5 s
            result = cli("search", "Gwadar port")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.exit_code == 1 and result.stderr.splitlines() == [
        f"pakus: error: {project.index / 'catalog.sqlite'} is locked by a pakus process that is writing it; try again in a moment"]
    assert_queryable(cli, "seeds")
