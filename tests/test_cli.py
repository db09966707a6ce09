"""The `pakus` command line, in-process with click's CliRunner on a tiny project built with the fakes.

The CLI builds `Bot(settings)` itself, so the fixture swaps the real embedder and generator loader
for the fakes where the bot and the index look them up; settings come from PAKUS_* variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import rag.bot
import rag.embedding
from conftest import FakeEmbedder, FakeGenerator, assert_runs_in_a_fresh_python, passage_number
from rag import __version__
from rag.cli import main
from rag.prompts import REFUSAL

HIT_KEYS = {"rank", "chunk_id", "source", "title", "section", "start", "end", "text", "score"}
ANSWER_KEYS = {"question", "answer", "answered", "citations", "hits", "timings"}
CITATION_KEYS = {"n", "source", "title", "section", "start", "end", "quote", "supported", "score"}


def csf_reply(messages):
    return f"The Coalition Support Fund (CSF) reimbursed Pakistan's army for operating costs [{passage_number(messages, 'Coalition Support Fund (CSF)')}]."


@pytest.fixture
def generator():
    return FakeGenerator()


@pytest.fixture
def project(tiny_index, generator, monkeypatch):
    """A tiny project with a built index; the CLI's Bot gets the fake embedder and `generator`."""
    settings, _ = tiny_index
    for name in list(os.environ):
        if name.startswith("PAKUS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PAKUS_PROJECT_ROOT", str(settings.project_root))
    monkeypatch.setenv("PAKUS_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setattr(rag.bot, "MiniLMEmbedder", FakeEmbedder)
    monkeypatch.setattr(rag.embedding, "MiniLMEmbedder", FakeEmbedder)  # what ingestion loads
    monkeypatch.setattr(rag.bot, "load_generator", lambda settings: generator)
    return settings


def run(args, input=None):
    return CliRunner().invoke(main, args, input=input)


def assert_one_line_error(result, says: str = ""):
    assert result.exit_code not in (0, None), result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pakus: error: ") and says in lines[0]
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- help and version ----------------------------------------------------------------------------------


def test_help_lists_the_commands_and_examples():
    result = run(["--help"])
    assert result.exit_code == 0
    for word in ("ask", "search", "chat", "index", "ui", "eval", "Examples:", 'pakus ask "What is CSF?"'):
        assert word in result.stdout


@pytest.mark.parametrize("command", [["ask", "--help"], ["search", "--help"], ["index", "status", "--help"]])
def test_subcommand_help(command):
    result = run(command)
    assert result.exit_code == 0 and "--json" in result.stdout


def test_version():
    result = run(["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"pakus, version {__version__}"


# --- search --------------------------------------------------------------------------------------------


def test_search_json_is_a_list_of_hits(project):
    result = run(["search", "When did IMET cease operations?", "-k", "2", "--json"])
    assert result.exit_code == 0, result.stderr
    hits = json.loads(result.stdout)
    assert isinstance(hits, list) and len(hits) == 2
    for n, hit in enumerate(hits, start=1):
        assert HIT_KEYS <= set(hit)
        assert hit["rank"] == n and isinstance(hit["start"], int) and hit["start"] < hit["end"]
    assert "IMET ceased operations" in hits[0]["text"] and hits[0]["source"] == "seeds/aid-review.md"
    assert hits[0]["section"] == "Military training" and hits[0]["title"] == "A Review of Aid to Pakistan"
    assert hits[0]["score"] >= hits[1]["score"]


def test_search_prints_readable_hits(project):
    result = run(["search", "Gwadar port", "-k", "1"])
    assert result.exit_code == 0
    assert result.stdout.startswith("[1] Gwadar port and regional trade")
    assert "seeds/gwadar-port.txt:" in result.stdout


def test_search_reads_standard_input(project):
    result = run(["search", "-", "--json", "-k", "1"], input="When did IMET cease operations?".encode())
    assert result.exit_code == 0 and "IMET" in json.loads(result.stdout)[0]["text"]


# --- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, stdin, says", [
    (["search", ""], None, "empty"),
    (["search", "   "], None, "empty"),
    (["search", "What is CSF?", "-k", "0"], None, "k must be"),
    (["search", "What is CSF?", "-k", "-1"], None, "k must be"),
    (["search", "x" * 100_000], None, "2,000"),
    (["ask", ""], None, "empty"),
    (["ask", " \n "], None, "empty"),
    (["ask", "What is CSF?", "-k", "0"], None, "k must be"),
    (["ask", "What is CSF?", "-k", "-1"], None, "k must be"),
    (["ask", "x" * 100_000], None, "2,000"),
    (["ask", "-"], b"What is \xff\xfe CSF?", "UTF-8"),
    (["search", "-"], b"\xc3\x28", "UTF-8"),
])
def test_bad_input_is_one_line_on_stderr_and_a_non_zero_exit(project, generator, args, stdin, says):
    result = run(args, input=stdin)
    assert_one_line_error(result, says)
    assert result.exit_code == 2
    assert generator.calls == []


def test_missing_index_and_no_documents_is_one_line(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("PAKUS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PAKUS_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("PAKUS_INDEX_DIR", str(tmp_path / "nowhere" / "index"))
    monkeypatch.setattr(rag.bot, "MiniLMEmbedder", FakeEmbedder)
    for args in (["search", "What is CSF?"], ["ask", "What is CSF?"]):
        result = run(args)
        assert_one_line_error(result, "no index")
        assert result.exit_code == 1
    assert not (tmp_path / "nowhere").exists()


def test_invalid_setting_from_the_environment_is_one_line(project, monkeypatch):
    monkeypatch.setenv("PAKUS_K", "many")
    assert_one_line_error(run(["search", "What is CSF?"]), "PAKUS_K")


def test_an_unexpected_failure_is_one_line_too(project, monkeypatch):
    def broken(self, query, k=None):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(rag.bot.Bot, "search", broken)
    result = run(["search", "What is CSF?"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == ["pakus: unexpected error: RuntimeError: something inside broke (set PAKUS_DEBUG=1 for the traceback)"]


# --- index ---------------------------------------------------------------------------------------------


def test_index_status_json(project):
    result = run(["index", "status", "--json"])
    assert result.exit_code == 0
    status = json.loads(result.stdout)
    assert status["state"] == "ok" and status["up_to_date"] is True
    assert status["documents"] == 3 and status["model"] == FakeEmbedder.name
    assert status["index_dir"] == str(project.index)


def test_index_status_of_a_damaged_index_exits_non_zero(project):
    (project.index / "catalog.sqlite").write_bytes(b"damaged\n" * 200)
    result = run(["index", "status", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["state"] == "corrupt"
    text = run(["index", "status"])
    assert text.exit_code == 1 and "state:      corrupt" in text.stdout and "damaged" in text.stdout


def test_index_status_of_a_stale_index_lists_the_reasons(project):
    (project.seeds / "cricket-notes.txt").unlink()
    result = run(["index", "status"])
    assert result.exit_code == 1
    assert "state:      stale" in result.stdout and "- seeds/cricket-notes.txt was removed" in result.stdout


def test_index_build_only_redoes_what_changed_unless_forced(project):
    result = run(["index", "build"])
    assert result.exit_code == 0 and result.stdout.splitlines()[-1].startswith("collection 'seeds': 3 unchanged in")
    (project.seeds / "cricket-notes.txt").write_text("Cricket notes\n\nThe team lost the final.\n", encoding="utf-8")
    result = run(["index", "build"])
    assert result.exit_code == 0 and "updated    seeds/cricket-notes.txt" in result.stdout and "1 updated, 2 unchanged" in result.stdout
    result = run(["index", "build", "--force"])
    assert result.exit_code == 0 and "3 updated" in result.stdout
    assert json.loads(run(["index", "status", "--json"]).stdout)["state"] == "ok"


# --- collections ---------------------------------------------------------------------------------------


@pytest.fixture
def home(project, monkeypatch, tmp_path):
    monkeypatch.setenv("PAKUS_HOME", str(tmp_path / "home"))
    folder = tmp_path / "mydocs"
    folder.mkdir()
    (folder / "port.md").write_text("# Port notes\n\nThe Gwadar port opened in 2007 with Chinese funding.\n", encoding="utf-8")
    (folder / "trains.txt").write_text("Train notes\n\nThe Khyber Mail runs from Peshawar to Karachi.\n", encoding="utf-8")
    (folder / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    return folder


def test_add_reports_each_file_then_a_summary(home):
    result = run(["add", str(home), "-c", "notes"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("added") and line.rstrip().endswith("port.md, 1 chunks") for line in lines)
    assert any(line.startswith("skipped: unsupported format .xlsx") for line in lines)
    assert lines[-1].startswith("collection 'notes': 2 added, 1 skipped in")
    again = run(["add", str(home), "-c", "notes", "--json"])
    assert again.exit_code == 0
    assert sorted(r["status"] for r in json.loads(again.stdout)) == ["skipped", "unchanged", "unchanged"]
    # Unchanged files are counted, not listed one line each (10,000 of them say nothing).
    quiet = run(["add", str(home), "-c", "notes"])
    assert quiet.exit_code == 0 and "port.md" not in quiet.stdout and "trains.txt" not in quiet.stdout
    assert quiet.stdout.splitlines()[-1].startswith("collection 'notes': 2 unchanged, 1 skipped in")


def test_add_exits_1_when_a_file_fails_and_keeps_the_others(home):
    (home / "empty.md").write_text("", encoding="utf-8")
    result = run(["add", str(home), str(home / "missing.pdf"), "-c", "notes", "--json"])
    assert result.exit_code == 1
    reports = {r["source"].rsplit("/", 1)[-1]: r for r in json.loads(result.stdout)}
    assert reports["empty.md"]["failed"] and reports["empty.md"]["reason"] == "empty file"
    assert reports["missing.pdf"]["reason"] == "no such file or folder"
    assert reports["port.md"]["status"] == "added"


def test_sources_collections_search_remove_and_delete(home):
    assert run(["add", str(home), "-c", "notes"]).exit_code == 0
    sources = json.loads(run(["sources", "-c", "notes", "--json"]).stdout)
    assert {s["title"] for s in sources} == {"Port notes", "Train notes"}
    assert {"source", "title", "format", "pages", "chunks", "sha256", "added_at"} <= set(sources[0])
    names = {c["name"]: c for c in json.loads(run(["collections", "--json"]).stdout)}
    assert names["notes"]["documents"] == 2 and "seeds" in names
    hits = json.loads(run(["search", "Khyber Mail", "-c", "notes", "--json"]).stdout)
    assert hits[0]["source"].endswith("trains.txt")
    removed = run(["remove", str(home / "trains.txt"), "-c", "notes"])
    assert removed.exit_code == 0 and removed.stdout.startswith("removed")
    assert [s["title"] for s in json.loads(run(["sources", "-c", "notes", "--json"]).stdout)] == ["Port notes"]
    refused = run(["collections", "delete", "notes"], input="n\n")
    assert refused.exit_code == 1 and "notes" in json.dumps(json.loads(run(["collections", "--json"]).stdout))
    assert run(["collections", "delete", "notes", "--yes"]).exit_code == 0
    missing = run(["search", "Khyber", "-c", "notes"])
    assert_one_line_error(missing, "no collection named 'notes'")


def test_a_collection_keeps_its_own_k(home, monkeypatch):
    monkeypatch.delenv("PAKUS_K", raising=False)
    assert run(["add", str(home), "-c", "notes"]).exit_code == 0
    ks = lambda: {c["name"]: c["k"] for c in json.loads(run(["collections", "--json"]).stdout)}  # noqa: E731
    assert ks() == {"seeds": 2, "notes": 2}
    result = run(["collections", "set", "notes", "--k", "3"])
    assert result.exit_code == 0 and result.stdout.strip() == "collection 'notes': k = 3"
    assert ks() == {"seeds": 2, "notes": 3} and "k=3" in run(["collections"]).stdout
    monkeypatch.setenv("PAKUS_K", "4")  # the command's or environment's k wins over the collection's
    assert ks()["notes"] == 4
    monkeypatch.delenv("PAKUS_K")
    assert run(["collections", "set", "notes", "--k", "default"]).stdout.strip() == "collection 'notes': k = 2 (the default)"
    assert ks()["notes"] == 2
    assert_one_line_error(run(["collections", "set", "notes", "--k", "three"]), "--k must be a whole number or 'default'")
    assert_one_line_error(run(["collections", "set", "notes", "--k", "0"]), "k must be a whole number from 1 to 50")
    assert_one_line_error(run(["collections", "set", "nothing", "--k", "3"]), "no collection named 'nothing'")


def test_sync_mirrors_a_folder(home):
    assert run(["sync", str(home), "-c", "notes"]).exit_code == 0
    (home / "trains.txt").unlink()
    result = run(["sync", str(home), "-c", "notes", "--json"])
    assert {r["status"] for r in json.loads(result.stdout) if r["source"].endswith("trains.txt")} == {"removed"}


@pytest.mark.parametrize("args, says", [
    (["add", "x.md", "-c", "../etc"], "invalid collection name"),
    (["sync", "not-a-folder", "-c", "notes"], "is not a folder"),
    (["sources", "-c", "nothing-here"], "no collection named 'nothing-here'"),
])
def test_collection_errors_are_one_line(home, args, says):
    assert_one_line_error(run(args), says)


# --- ask and chat ------------------------------------------------------------------------------------------


def test_ask_json_prints_the_answer_contract(project, generator):
    generator.replies.append(csf_reply)
    result = run(["ask", "What is the Coalition Support Fund?", "--json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert ANSWER_KEYS <= set(answer)
    assert answer["question"] == "What is the Coalition Support Fund?" and answer["answered"] is True
    [citation] = answer["citations"]
    assert CITATION_KEYS <= set(citation) and citation["supported"] is True
    assert f"[{citation['n']}]" in answer["answer"]
    assert "Coalition Support Fund (CSF) to reimburse" in citation["quote"]
    raw = (project.project_root / citation["source"]).read_text(encoding="utf-8")
    assert raw[citation["start"]:citation["end"]] == citation["quote"]
    assert all(HIT_KEYS <= set(hit) for hit in answer["hits"])
    assert {"retrieval", "first_token", "total", "backend", "model"} <= set(answer["timings"])
    assert answer["timings"]["backend"] == "fake"


def test_ask_streams_the_answer_then_its_sources(project, generator):
    generator.replies.append(csf_reply)
    result = run(["ask", "What is the Coalition Support Fund?"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("The Coalition Support Fund (CSF) reimbursed Pakistan's army")
    assert "Sources:" in result.stdout and "seeds/aid-review.md:" in result.stdout


def test_ask_without_evidence_declines_and_shows_the_closest_passages(project, generator):
    result = run(["ask", "Give me a recipe for chicken biryani"])
    assert result.exit_code == 0 and generator.calls == []
    assert result.stdout.startswith(REFUSAL)
    assert "Closest passages" in result.stdout


def test_ask_explain_shows_retrieval_prompt_and_timings(project, generator):
    generator.replies.append(csf_reply)
    result = run(["ask", "What is the Coalition Support Fund?", "--explain"])
    assert result.exit_code == 0
    for heading in ("Retrieval", "Prompt", "Model output (before the citation check)", "Timings"):
        assert heading in result.stdout


def test_chat_answers_then_quits(project, generator):
    generator.replies.append(csf_reply)
    result = run(["chat"], input="What is the Coalition Support Fund?\n/quit\n")
    assert result.exit_code == 0
    assert "pakus> The Coalition Support Fund (CSF) reimbursed" in result.stdout
    assert len(generator.calls) == 1


# --- the installed command, in a fresh process ---------------------------------------------------------


def test_pakus_help_is_instant_and_imports_nothing_heavy():
    script = Path(sys.executable).with_name("pakus")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]
    started = time.perf_counter()
    result = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=30)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0 and "Examples:" in result.stdout
    assert elapsed < 1.0, f"pakus --help took {elapsed:.2f} s"
    check = ("import rag.cli, sys; heavy = [m for m in ('torch', 'faiss', 'numpy', 'transformers', 'llama_cpp', 'gradio', "
             "'sentence_transformers', 'bm25s') if m in sys.modules]; assert not heavy, heavy")
    assert_runs_in_a_fresh_python(check)


def test_streamed_text_is_followed_by_the_checked_answer_only_when_its_words_changed(capsys):
    from rag.display import stream_answer
    from rag.schema import Answer

    same = Answer("q", "CSF paid costs [1].", True)
    stream_answer(iter(["CSF paid ", "costs. [1]", same]))
    assert "Checked answer" not in capsys.readouterr().out

    changed = Answer("q", "Coalition Support Fund (CSF) paid costs [1].", True)
    stream_answer(iter(["CSF paid costs [1].", changed]))
    assert "Checked answer: Coalition Support Fund (CSF) paid costs [1]." in capsys.readouterr().out
