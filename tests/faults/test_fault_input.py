"""Hostile and careless input: bytes that are not UTF-8, terminal escapes, a reader that leaves
early (broken pipe), files that are not UTF-8, missing folders, bad options. Each ends in one line
and an exit code, or is handled; never a traceback or "unexpected error".

Input that only a real process can give (bytes in argv, a closed pipe) goes through fake_pakus.py
in a subprocess; the rest runs in-process with click's CliRunner.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import rag.bot
from conftest import passage_number
from faultkit import FAKE_PAKUS, cli, project  # noqa: F401 - fixtures
CSF_REPLY = "The Coalition Support Fund (CSF) reimbursed Pakistan's army for operating costs [{csf}]."
NOT_UTF8 = b"What is \xff CSF?"


def csf_reply(messages):
    return CSF_REPLY.replace("{csf}", str(passage_number(messages, "Coalition Support Fund (CSF)")))


def assert_quiet_failure(result: subprocess.CompletedProcess, exit_code: int, says: str) -> None:
    """One line on stderr, the library's own message, nothing on stdout."""
    err = result.stderr.decode()
    assert result.returncode == exit_code, err
    assert result.stdout == b""
    assert len(err.splitlines()) == 1 and err.startswith("pakus: error: ") and says in err, err
    assert "unexpected" not in err and "Traceback" not in err


# --- bytes that are not UTF-8 ------------------------------------------------------------------


@pytest.mark.parametrize("command", [["search"], ["ask"], ["ask", "--json"]])
def test_a_question_argument_that_is_not_utf8_is_one_line_and_exit_2(project, command):  # noqa: F811
    """`pakus search "$(printf 'What is \\xff CSF?')"`: was "unexpected error: TypeError" from the
    embedder's tokenizer. Python hands such bytes on as lone surrogates."""
    *name, option = [*command, None] if len(command) == 1 else command
    args = [*name, NOT_UTF8] + ([option] if option else [])
    command_line = [sys.executable, str(FAKE_PAKUS), *args]
    result = subprocess.run(command_line, capture_output=True, env=project.env(), timeout=60)
    assert_quiet_failure(result, 2, "not valid UTF-8")
    assert "\\xff" in result.stderr.decode()


def test_chat_answers_a_line_that_is_not_utf8_with_one_line_and_keeps_its_history(project):  # noqa: F811
    """`printf 'What is \\xff CSF?\\n' | pakus chat` ended the session (and lost its history)."""
    lines = b"What is the Coalition Support Fund?\n" + NOT_UTF8 + b"\nWhat did it reimburse?\n"
    result = project.pakus("chat", input=lines, PAKUS_FAKE_REPLY=CSF_REPLY,
                           PAKUS_FAKE_REWRITE="What did the Coalition Support Fund reimburse?")
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    assert [line for line in err.splitlines() if line.startswith("pakus: error")] == [
        "pakus: error: the question is not valid UTF-8 text (it holds the byte \\xff); retype it, or convert it to UTF-8"]
    assert out.count("pakus> ") == 2  # the first question and the follow-up; the bad line got its error only
    # The follow-up was understood through the history the bad line did not destroy.
    assert "(searching for: What did the Coalition Support Fund reimburse?)" in out


def test_standard_input_that_is_not_utf8_is_one_line(cli):
    run, generator = cli, cli.generator
    result = run(["ask", "-", "--json"], input=NOT_UTF8)
    assert result.exit_code == 2 and "UTF-8" in result.stderr and generator.calls == []


def test_an_eval_question_file_that_is_not_utf8_is_one_line_naming_the_line(cli, tmp_path):
    """Was "unexpected error: UnicodeDecodeError"."""
    run = cli
    questions = tmp_path / "questions.jsonl"
    questions.write_bytes(b'{"id": "a", "question": "What is CSF?", "answerable": false}\n'
                          b'{"id": "b", "question": "' + NOT_UTF8 + b'", "answerable": false}\n')
    result = run(["eval", str(questions)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"pakus: error: {questions}, line 2: not UTF-8 text (byte 0xff); save the question file as UTF-8"]


# --- terminal escapes and control characters ------------------------------------------------------


@pytest.mark.parametrize("question", [
    "What is the \x1b[1mCoalition Support Fund\x1b[0m?",
    "\x1b[31mWhat is the Coalition Support Fund?\x1b[0m",
    "What is the Coalition\x07 Support\x00 Fund?\x1b]0;title\x07",
])
def test_terminal_escapes_in_a_question_do_not_make_the_check_decline_a_correct_answer(cli, question):
    """"1m" and "0m" became words of the question, which no passage holds: declined ("unsupported")."""
    run, generator = cli, cli.generator
    generator.replies.append(csf_reply)
    result = run(["ask", question, "--json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["answered"] is True, answer["decline_reason"]
    assert "\x1b" not in answer["question"] and "\x00" not in answer["question"]


def test_a_question_of_escapes_only_is_empty(cli):
    run = cli
    result = run(["search", "\x1b[1m\x1b[0m\x07"])
    assert result.exit_code == 2 and result.stderr.startswith("pakus: error: the question is empty")


# --- markers in the streamed text and the final answer --------------------------------------------


def shown_answer_and_sources(stdout: str) -> tuple[str, set[int]]:
    """What the reader takes as the answer (the checked one if printed, else the streamed text),
    and the numbers of the sources listed under it."""
    head = stdout.split("\nSources:")[0]
    checked = re.search(r"Checked answer: (.*)", head)
    shown = checked.group(1) if checked else head
    return shown, {int(n) for n in re.findall(r"(?m)^  \[(\d+)\] ", stdout)}


def markers(text: str) -> set[int]:
    return {int(n) for group in re.findall(r"\[(\d+(?:\s*,\s*\d+)*)\]", text) for n in re.split(r"\s*,\s*", group)}


def test_a_long_question_whose_stream_cites_a_passage_the_sources_do_not_list(cli):
    """A 2,000-character question streamed "... [2]." while the sources listed only [1]: the
    check had moved the citation to passage 1, and the CLI, comparing words only, showed nothing
    more. Now the checked answer is shown whenever a streamed marker has no source."""
    run, generator = cli, cli.generator
    question = ("When did the Gwadar port open and who funded it? " * 40)[:1999]
    generator.replies.append("The Gwadar port opened in 2007 with Chinese funding [2].")
    result = run(["ask", question])
    assert result.exit_code == 0, result.stderr
    shown, sources = shown_answer_and_sources(result.stdout)
    assert markers(shown) and markers(shown) <= sources, result.stdout


REPLIES = [
    "The Coalition Support Fund (CSF) reimbursed Pakistan's army for operating costs [{csf}].",
    "The Coalition Support Fund (CSF) reimbursed Pakistan's army for operating costs [7].",
    "The Coalition Support Fund (CSF) reimbursed Pakistan's army for operating costs [{csf}, 9][3].",
    "[{csf}]",
    "The Coalition Support Fund (CSF) reimbursed Pakistan's army [{csf}]. It was founded on the moon in 1850 [2].",
    "The Coalition Support Fund (CSF) reimbursed Pakistan's army for operating costs.",
    "CSF accounted for over a third of the funds that Washington provided to Islamabad [{csf}] [0] [-1].",
]


@pytest.mark.parametrize("reply", REPLIES)
def test_every_marker_of_a_final_answer_has_its_citation(cli, reply):
    """The Answer's text and its citations agree, whatever markers the model wrote."""
    run, generator = cli, cli.generator
    def marked(messages, r=reply):
        # The CSF passage's number, or 1 in a retry given another passage alone.
        csf = "Coalition Support Fund (CSF)" in messages[-1]["content"]
        return r.replace("{csf}", str(passage_number(messages, "Coalition Support Fund (CSF)") if csf else 1))

    generator.replies.extend([marked] * 4)
    result = run(["ask", "What is the Coalition Support Fund?", "--json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    if not answer["answered"]:
        assert answer["citations"] == []
    else:
        assert markers(answer["answer"]) == {c["n"] for c in answer["citations"]}, answer["answer"]
        generator.replies[:] = [marked] * 4  # the same replies, streamed to the terminal this time
        streamed = run(["ask", "What is the Coalition Support Fund?"])
        assert streamed.exit_code == 0, streamed.stderr
        shown, sources = shown_answer_and_sources(streamed.stdout)
        assert markers(shown) <= sources


# --- a reader that leaves early ----------------------------------------------------------------------


@pytest.mark.parametrize("args, reader", [
    (["search", "Coalition Support Fund", "-k", "50"], "head -1"),
    (["search", "Coalition Support Fund", "-k", "50"], "true"),
    (["search", "CSF", "--json", "-k", "50"], "true"),
    (["index", "status"], "true"),
    (["sources"], "true"),
    (["collections"], "true"),
])
def test_a_closed_pipe_ends_quietly(project, args, reader):  # noqa: F811
    """`pakus search CSF -k 50 | head -1` ended in "unexpected error: BrokenPipeError", exit 1.
    `true` reads nothing and leaves at once: the broken pipe is certain, not a race."""
    quoted = " ".join(f"'{a}'" for a in args)
    script = f"'{sys.executable}' '{FAKE_PAKUS}' {quoted} | {reader}; echo \"exit=${{PIPESTATUS[0]}}\" >&2"
    result = subprocess.run(["bash", "-c", script], capture_output=True, env=project.env(), timeout=60)
    err = result.stderr.decode()
    *messages, status = err.splitlines()
    assert messages == [], err
    assert status in ("exit=0", "exit=141"), err
    if reader == "true":
        assert status == "exit=141"


# --- missing folders -----------------------------------------------------------------------------------


def test_index_status_reports_an_intact_index_when_the_seeds_folder_is_missing(cli, project):  # noqa: F811
    run = cli
    for path in project.seeds.iterdir():
        path.unlink()
    project.seeds.rmdir()
    result = run(["index", "status", "--json"])
    status = json.loads(result.stdout)
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    assert status["state"] == "stale" and status["documents"] == 3 and status["chunks"] > 0
    assert "the folder seeds is gone" in status["stale_reasons"]
    assert "pakus index build" in status["refresh"] and "restore the seeds folder" in status["refresh"]
    text = run(["index", "status"])
    assert "documents:  3" in text.stdout and "Traceback" not in text.output
    # Queries still answer from the index, and say the same.
    search = run(["search", "Gwadar port", "-k", "1"])
    assert search.exit_code == 0 and "restore the seeds folder" in search.stderr


def test_the_error_for_a_missing_index_suggests_a_command_that_works(cli, project, monkeypatch):  # noqa: F811
    """It said "run: pakus index build", which fails the same way when there is no seeds folder."""
    run = cli
    monkeypatch.setenv("PAKUS_INDEX_DIR", str(project.root / "nowhere"))
    monkeypatch.setenv("PAKUS_SEEDS_DIR", str(project.root / "no-seeds"))
    result = run(["search", "What is CSF?"])
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1
    assert "pakus index build" not in result.stderr and "pakus add PATH -c NAME" in result.stderr
    build = run(["index", "build"])
    assert build.exit_code == 1 and build.stderr.splitlines() == [
        f"pakus: error: no seeds folder at {project.root / 'no-seeds'} to build the index from; restore it (git checkout "
        "seeds), or set PAKUS_SEEDS_DIR to the folder of the seed documents"]
    # The suggestion works: a collection of one's own answers.
    assert run(["add", str(project.docs), "-c", "mine"]).exit_code == 0
    assert run(["search", "Gwadar port", "-c", "mine", "-k", "1"]).exit_code == 0


# --- bad options and settings -----------------------------------------------------------------------


@pytest.mark.parametrize("args, env, code, says", [
    (["search", "CSF", "-k", "0"], {}, 2, "k must be"),
    (["search", "CSF", "-k", "51"], {}, 2, "k must be"),
    (["ask", "CSF", "-k", "21"], {}, 2, "k must be"),
    (["search", "CSF", "-k", "many"], {}, 2, "'many' is not a valid integer"),
    (["ask", "CSF", "--backend", "nonsense"], {}, 2, "'nonsense' is not one of"),
    (["search", "CSF", "-c", "../etc"], {}, 2, "invalid collection name"),
    (["search", "CSF"], {"PAKUS_K": "many"}, 2, "PAKUS_K"),
    (["search", "CSF"], {"PAKUS_BACKEND": "nonsense"}, 2, "unknown backend"),
    (["search", "CSF"], {"PAKUS_COLLECTION": "a/b"}, 2, "invalid collection name"),
    (["search", "x" * 2001], {}, 2, "2,000"),
    (["search", "\x00\x00"], {}, 2, "empty"),
    (["eval", "/nonexistent.jsonl"], {}, 2, "cannot read question file"),
    (["add", "/nonexistent-folder", "-c", "new"], {}, 1, ""),
])
def test_bad_options_and_settings_end_in_one_message_and_no_traceback(cli, monkeypatch, args, env, code, says):
    run, generator = cli, cli.generator
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run(args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert says in result.stderr
    assert generator.calls == []


@pytest.mark.parametrize("model", ["/nonexistent.gguf", "README"])
def test_a_model_path_that_is_not_a_model_is_one_line(cli, monkeypatch, project, model):  # noqa: F811
    from rag.generators import load_generator

    run = cli
    monkeypatch.setattr(rag.bot, "load_generator", load_generator)  # the real one: it checks the path first
    (project.root / "README").write_text("not a model")
    result = run(["ask", "What is the Coalition Support Fund?", "--model", str(project.root / model.lstrip("/"))])
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("pakus: error: model path") and "unexpected" not in result.stderr
