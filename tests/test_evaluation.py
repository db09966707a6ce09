"""Evaluation metrics on fakes: scripted search/ask returning real schema records."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from rag.display import format_report
from rag.errors import InvalidInputError
from rag.evaluation import (
    contains_evidence,
    evaluate,
    is_correct,
    load_questions,
    percentile,
    run_eval,
)
from conftest import load_document
from rag.ingest import read_overrides as read_provenance
from rag.schema import Answer, Chunk, Citation, Hit
from rag.settings import Settings

PROJECT = Path(__file__).resolve().parent.parent
QUESTION_FILES = [PROJECT / "tests" / "data" / name for name in ("seeds_qa.jsonl", "extra_qa.jsonl", "holdout_qa.jsonl")]


# --- fakes --------------------------------------------------------------------------------------


def chunk(text: str, name: str) -> Chunk:
    return Chunk(chunk_id=name, source="seeds/doc.md", title="Doc", section="", start=0, end=len(text), text=text)


CSF = chunk("The United States established the Coalition Support Fund (CSF) to reimburse Pakistan's army.", "c-csf")
THIRD = chunk("CSF accounted for over a third of the Washington-provided funds to Islamabad.", "c-third")
AID = chunk("Pakistan is projected to have received $73 billion in foreign aid.", "c-aid")
OTHER = chunk("The Green Alliance could see further expansion.", "c-other")


def hits(*chunks: Chunk) -> list[Hit]:
    return [Hit(rank=i, chunk=c, score=1.0 / i) for i, c in enumerate(chunks, start=1)]


def citation(n: int, c: Chunk, supported: bool = True) -> Citation:
    return Citation(n=n, source=c.source, title=c.title, section="", start=c.start, end=c.end,
                    quote=c.text, supported=supported, score=1.0, chunk_id=c.chunk_id, passage=c.text)


def answer(question: str, text: str, *, answered: bool = True, cited=(), seen=(), timings=None, rewritten=None,
           removed=()) -> Answer:
    return Answer(question=question, answer=text, answered=answered, citations=list(cited), hits=hits(*seen),
                  timings=timings or {}, rewritten_question=rewritten,
                  decline_reason=None if answered else "no_evidence", unsupported_sentences=list(removed))


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def q(id: str, question: str, **fields) -> dict:
    return {"id": id, "question": question, "answerable": True, **fields}


# A tiny set with known results: q1 right with evidence at rank 1; q2 right, evidence at rank 2,
# cites a passage without the evidence; q3 answerable but declined (evidence not retrieved);
# u1 unanswerable and declined; u2 unanswerable but answered.
KNOWN = [
    q("q1", "What is CSF?", answer_any=[["coalition support fund"]], source="doc.md",
      evidence="established the Coalition Support Fund (CSF)"),
    q("q2", "How much aid?", answer_any=[["73 billion"], ["foreign"]], source="doc.md",
      evidence="received \\$73   billion in foreign aid"),  # raw markdown escape, odd spacing
    q("q3", "What share did CSF have?", answer_any=[["third"]], source="doc.md",
      evidence="over a third of the Washington-provided funds"),
    {"id": "u1", "question": "Capital of Australia?", "answerable": False},
    {"id": "u2", "question": "Who won in 2024?", "answerable": False},
]
SEARCH = {
    "What is CSF?": hits(CSF, OTHER),
    "How much aid?": hits(OTHER, AID, CSF),
    "What share did CSF have?": hits(OTHER, THIRD),
    "Capital of Australia?": hits(OTHER),
    "Who won in 2024?": hits(OTHER),
}
ASK = {
    "What is CSF?": answer("What is CSF?", "It is the Coalition Support Fund [1].", cited=[citation(1, CSF)],
                           seen=[CSF, OTHER], timings={"retrieval": 0.01, "first_token": 1.0, "total": 2.0,
                                                       "backend": "fake", "model": "scripted"}),
    "How much aid?": answer("How much aid?", "About $73 BILLION of foreign aid [1][2].",
                            cited=[citation(1, OTHER, supported=False), citation(2, CSF)], seen=[OTHER, AID],
                            timings={"retrieval": 0.03, "first_token": 3.0, "total": 4.0}),
    "What share did CSF have?": answer("What share did CSF have?", "The documents don't say.", answered=False,
                                       timings={"retrieval": 0.02, "total": 0.02}, removed=["CSF had a half."]),
    "Capital of Australia?": answer("Capital of Australia?", "The documents don't say.", answered=False,
                                    timings={"retrieval": 0.02, "total": 0.02}),
    "Who won in 2024?": answer("Who won in 2024?", "Harris [1].", cited=[citation(1, OTHER)], seen=[OTHER],
                               timings={"retrieval": 0.04, "first_token": 2.0, "total": 3.0}),
}


def fake_search(question: str, k: int) -> list[Hit]:
    return SEARCH[question][:k]


def fake_ask(question: str, history: list) -> Answer:
    return ASK[question]


# --- loading question sets ----------------------------------------------------------------------


def test_load_questions_reads_every_field_and_defaults_answerable(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [
        {"id": "a", "question": "What is CSF?", "answer_any": [["fund"]], "source": "s.md", "evidence": "fund"},
        "",
        {"id": "b", "question": "And then?", "answerable": False, "follow_up_of": "a"},
    ])
    questions = load_questions(path)
    assert [x["id"] for x in questions] == ["a", "b"]
    assert questions[0]["answerable"] is True
    assert questions[1]["follow_up_of"] == "a"


@pytest.mark.parametrize(
    "bad_line, says",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"question": "no id"}), "'id'"),
        (json.dumps({"id": "x"}), "'question'"),
        (json.dumps({"id": "x", "question": "Q?", "answerable": True, "source": "s", "evidence": "e"}), "answer_any"),
        (json.dumps({"id": "x", "question": "Q?", "answer_any": [["a"]], "source": "s"}), "'evidence'"),
        (json.dumps({"id": "x", "question": "Q?", "answer_any": [["a"]], "evidence": "e"}), "'source'"),
        (json.dumps({"id": "x", "question": "Q?", "answerable": False, "follow_up_of": "later"}), "follow_up_of"),
        (json.dumps({"id": "ok", "question": "duplicate", "answerable": False}), "unique"),
    ],
)
def test_a_bad_line_names_the_file_and_line(tmp_path, bad_line, says):
    good = json.dumps({"id": "ok", "question": "Fine?", "answerable": False})
    path = write_jsonl(tmp_path / "qa.jsonl", [good, good.replace('"ok"', '"ok2"'), bad_line])
    with pytest.raises(InvalidInputError) as error:
        load_questions(path)
    assert f"{path}, line 3" in str(error.value)
    assert says in str(error.value)


def test_missing_question_file_is_an_input_error(tmp_path):
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_questions(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("path", QUESTION_FILES, ids=lambda p: p.name)
def test_shipped_question_sets_load_and_each_evidence_is_in_its_cleaned_document(path):
    seeds = PROJECT / "seeds"
    # Question files may name a seed by its current name or by its original name (sources.json).
    original_names = {meta.get("original_name"): name for name, meta in read_provenance(seeds).items()}
    questions = load_questions(path)
    assert len(questions) >= 20
    for question in questions:
        if question["answerable"]:
            name = original_names.get(question["source"], question["source"])
            document = load_document(seeds / name, PROJECT)
            assert contains_evidence(document.text, question["evidence"]), question["id"]


# --- matching -----------------------------------------------------------------------------------


def test_evidence_matches_after_the_loaders_cleaning_whitespace_and_case():
    assert contains_evidence(AID.text, "received \\$73 billion")  # `\$` in the raw markdown
    assert contains_evidence(AID.text, "RECEIVED $73\n   billion")
    assert contains_evidence("Received on 6th October", "6<sup>th</sup> October")
    assert contains_evidence("Keywords: Pakistan", "**Keywords:** Pakistan")
    assert not contains_evidence(AID.text, "received $74 billion")
    assert not contains_evidence(AID.text, "   ")


def test_correct_needs_one_phrase_of_every_group():
    assert is_correct("The Chief of Army Staff and the COGS.", [["chief of army staff", "coas"], ["cogs"]])
    assert not is_correct("The Chief of Army Staff.", [["chief of army staff", "coas"], ["cogs"]])


def test_percentile_interpolates_like_numpy():
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)


# --- evaluate -----------------------------------------------------------------------------------


def test_known_case_gives_known_metrics():
    report = evaluate(KNOWN, search=fake_search, ask=fake_ask, progress=False)

    # Evidence ranks: q1 -> 1, q2 -> 2, q3 -> 2 (retrieved, though the bot declined).
    assert report["retrieval"]["recall_at_1"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["retrieval"]["recall_at_5"] == 1.0
    assert report["retrieval"]["mrr"] == pytest.approx((1 + 0.5 + 0.5) / 3, abs=1e-4)

    answers = report["answers"]
    assert (answers["correct"], answers["answerable"], answers["unanswerable"]) == (2, 3, 2)
    assert answers["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert answers["declined_unanswerable"] == 0.5
    assert answers["wrongly_declined"] == 1

    # Four citations, one unsupported; only q1 cites a passage holding its evidence (q2 cites two
    # passages, neither the one with "$73 billion"; q3 declined).
    assert report["citations"]["count"] == 4
    assert report["citations"]["supported"] == 0.75
    assert report["citations"]["on_evidence"] == pytest.approx(1 / 3, abs=1e-4)

    latency = report["latency"]
    assert latency["first_token_p50"] == 2.0  # declines have no first token and are left out
    assert latency["total_p50"] == 2.0
    assert latency["retrieval_p50"] == 0.02
    assert latency["first_token_p95"] == pytest.approx(2.9)

    assert (report["backend"], report["model"], report["errors"]) == ("fake", "scripted", 0)
    by_id = {r["id"]: r for r in report["questions"]}
    assert [by_id[i]["correct"] for i in ("q1", "q2", "q3", "u1", "u2")] == [True, True, False, True, False]
    assert by_id["q2"]["evidence_rank"] == 2 and by_id["q2"]["evidence_in_context"] is True
    assert [c["on_evidence"] for c in by_id["q2"]["citations"]] == [False, False]  # AID was never cited
    assert by_id["q1"]["cites_evidence"] is True and by_id["q2"]["cites_evidence"] is False
    # What the citation check removed is in the record: a decline shows the reply it threw away.
    assert by_id["q3"]["removed_sentences"] == ["CSF had a half."] and by_id["q1"]["removed_sentences"] == []
    assert set(by_id["q1"]) >= {"id", "question", "rewritten_question", "answer", "answered", "correct",
                                "evidence_rank", "citations", "timings", "error"}
    json.dumps(report)  # the report is plain data, printable as JSON


def test_a_raising_question_is_counted_as_an_error_and_the_run_goes_on():
    def ask(question, history):
        if question == "How much aid?":
            raise RuntimeError("model crashed")
        return fake_ask(question, history)

    report = evaluate(KNOWN, search=fake_search, ask=ask, progress=False)
    assert report["errors"] == 1
    failed = next(r for r in report["questions"] if r["id"] == "q2")
    assert failed["error"] == "RuntimeError: model crashed"
    assert failed["correct"] is False and failed["evidence_rank"] is None
    assert report["answers"]["correct"] == 1  # q1 still ran, and so did everything after q2
    assert len(report["questions"]) == len(KNOWN)
    assert "ERROR RuntimeError: model crashed" in format_report(report)


def test_a_raising_search_is_an_error_too():
    def search(question, k):
        raise OSError("index gone")

    report = evaluate(KNOWN[:1], search=search, ask=fake_ask, progress=False)
    assert report["errors"] == 1 and report["retrieval"]["recall_at_5"] == 0.0


def test_follow_up_is_asked_with_the_earlier_turn_as_history():
    questions = [
        q("a", "What is CSF?", answer_any=[["coalition support fund"]], source="doc.md",
          evidence="Coalition Support Fund"),
        q("b", "How much of the funds did it account for?", answer_any=[["third"]], source="doc.md",
          evidence="over a third of the Washington-provided funds", follow_up_of="a"),
    ]
    first = ASK["What is CSF?"]
    rewritten = "How much of the funds did the CSF account for?"
    calls, searched = [], []

    def ask(question, history):
        calls.append((question, history))
        if question == "What is CSF?":
            return first
        return answer(question, "Over a third [1].", cited=[citation(1, THIRD)], seen=[THIRD], rewritten=rewritten)

    def search(question, k):
        searched.append(question)
        return hits(OTHER, THIRD) if question == rewritten else hits(CSF)

    report = evaluate(questions, search=search, ask=ask, progress=False)
    assert calls[0] == ("What is CSF?", [])
    assert calls[1] == ("How much of the funds did it account for?", [("What is CSF?", first)])
    assert searched[1] == rewritten  # retrieval is measured on the rewritten, stand-alone question
    follow_up = report["questions"][1]
    assert follow_up["correct"] and follow_up["evidence_rank"] == 2
    assert follow_up["rewritten_question"] == rewritten and follow_up["follow_up_of"] == "a"


def test_follow_up_of_a_failed_question_is_an_error_not_a_fresh_question():
    questions = [
        {"id": "a", "question": "Boom?", "answerable": False},
        {"id": "b", "question": "And?", "answerable": False, "follow_up_of": "a"},
    ]
    asked = []

    def ask(question, history):
        asked.append(question)
        raise RuntimeError("boom")

    report = evaluate(questions, search=fake_search, ask=ask, progress=False)
    assert asked == ["Boom?"]
    assert report["errors"] == 2
    assert "earlier question 'a' has no answer" in report["questions"][1]["error"]


def test_format_report_has_overall_figures_then_one_line_per_question():
    text = format_report(evaluate(KNOWN, search=fake_search, ask=fake_ask, progress=False))
    assert "recall@5 100%" in text and "accuracy 67% (2/3)" in text
    lines = text.splitlines()
    q1 = next(line for line in lines if line.startswith("q1 "))
    assert " ok " in q1 and "Coalition Support Fund" in q1 and "1.0" in q1 and "2.0" in q1
    assert "FAIL" in next(line for line in lines if line.startswith("q3 "))
    assert "declined" in next(line for line in lines if line.startswith("u1 "))


# --- run_eval (the CLI's entry point) with a fake Bot -------------------------------------------


class FakeBot:
    def __init__(self, settings):
        self.settings = settings
        self.k = settings.k or 2

    def warm_up(self):
        pass

    def search(self, question, k):
        return fake_search(question, k)

    def ask(self, question, history=None, k=None):
        if question == "Who won in 2024?":
            raise RuntimeError("generator failed")
        return fake_ask(question, history or [])


@pytest.fixture
def fake_bot(monkeypatch):
    module = types.ModuleType("rag.bot")
    module.Bot = FakeBot
    monkeypatch.setitem(sys.modules, "rag.bot", module)


def test_run_eval_prints_json_and_exits_non_zero_when_a_question_failed(tmp_path, fake_bot, capsys):
    path = write_jsonl(tmp_path / "qa.jsonl", KNOWN)
    code = run_eval(path, Settings(project_root=tmp_path), as_json=True)
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["errors"] == 1 and report["k"] == 2
    assert report["answers"]["correct"] == 2 and report["question_file"] == str(path)


def test_run_eval_defaults_to_the_projects_question_set_and_prints_a_table(tmp_path, fake_bot, capsys):
    (tmp_path / "tests" / "data").mkdir(parents=True)
    write_jsonl(tmp_path / "tests" / "data" / "seeds_qa.jsonl", KNOWN[:4])
    code = run_eval(None, Settings(project_root=tmp_path), as_json=False)
    out = capsys.readouterr().out
    assert code == 0
    assert "seeds_qa.jsonl" in out and "accuracy 67% (2/3)" in out


def test_curly_and_straight_quotes_compare_equal():
    from rag.evaluation import contains_evidence

    assert contains_evidence("to reimburse Pakistan’s army for “operating” costs", "reimburse Pakistan's army for \"operating\" costs")
