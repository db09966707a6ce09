"""Measure answer quality on a question set: retrieval, correctness, declines, citations, latency.

A question set is JSONL, one question a line (format: tests/data/seeds_qa.jsonl and
/work/shared/eval/README.md). `evaluate` takes the two things it measures as plain callables,
`search(question, k)` and `ask(question, history)`, so the metrics are tested with fakes and run
unchanged against the real `Bot`. Nothing here grades text with a model: an answer is correct when
it contains one phrase of every `answer_any` group, and a passage holds the evidence when the
evidence is a substring of it after cleaning (the README's definition).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import InvalidInputError
from .schema import Answer, Hit

__all__ = [
    "RETRIEVAL_DEPTH",
    "load_questions",
    "contains_evidence",
    "is_correct",
    "percentile",
    "evaluate",
    "run_eval",
]

# Retrieval is measured over the top 5 hits (recall@5), whatever k the bot gives the model.
RETRIEVAL_DEPTH = 5

Search = Callable[[str, int], list[Hit]]
Ask = Callable[[str, list], Answer]


# --- question sets ------------------------------------------------------------------------------


def load_questions(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL question set; a bad line raises InvalidInputError naming the file and line.

    Blank lines are skipped. `answerable` defaults to true. `follow_up_of` names the id of an
    earlier question of the same file: the question is then asked as the second turn of a chat.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidInputError(f"cannot read question file {path}: {error.strerror or error}") from None
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise InvalidInputError(f"{path}, line {line}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
                                "save the question file as UTF-8") from None
    questions: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidInputError(f"{where}: not valid JSON ({error.msg}); each line must be one JSON object") from None
        questions.append(_check_question(record, where, seen))
        seen.add(record["id"])
    if not questions:
        raise InvalidInputError(f"{path} holds no questions; write one JSON object per line")
    return questions


def _check_question(record: Any, where: str, earlier_ids: set[str]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise InvalidInputError(f"{where}: expected a JSON object with 'id' and 'question'")
    for name in ("id", "question"):
        if not isinstance(record.get(name), str) or not record[name].strip():
            raise InvalidInputError(f"{where}: missing or empty '{name}' (a non-empty string)")
    if record["id"] in earlier_ids:
        raise InvalidInputError(f"{where}: id {record['id']!r} is used by an earlier line; ids must be unique")
    answerable = record.setdefault("answerable", True)
    if not isinstance(answerable, bool):
        raise InvalidInputError(f"{where}: 'answerable' must be true or false, got {answerable!r}")
    if answerable:
        groups = record.get("answer_any")
        if not (isinstance(groups, list) and groups and all(_is_phrase_group(g) for g in groups)):
            raise InvalidInputError(
                f"{where}: an answerable question needs 'answer_any', a list of lists of phrases, "
                'e.g. [["coalition support fund"]]'
            )
        for name in ("evidence", "source"):
            if not isinstance(record.get(name), str) or not record[name].strip():
                raise InvalidInputError(f"{where}: an answerable question needs '{name}' (a non-empty string)")
    follow_up_of = record.get("follow_up_of")
    if follow_up_of is not None and follow_up_of not in earlier_ids:
        raise InvalidInputError(
            f"{where}: 'follow_up_of' is {follow_up_of!r}, which is not the id of an earlier question in this file"
        )
    return record


def _is_phrase_group(group: Any) -> bool:
    return isinstance(group, list) and bool(group) and all(isinstance(p, str) and p.strip() for p in group)


# --- matching -----------------------------------------------------------------------------------


_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


def _normalise(text: str) -> str:
    # Curly and straight quotes compare equal: converters (pandoc, Word) curl them.
    return " ".join(text.translate(_QUOTES).split()).casefold()


def _clean(text: str) -> str:
    # The chunker's own cleaning, so that an evidence string copied from the raw file (with `\$`,
    # `**`, `<sup>`) compares equal to the cleaned chunk text. Imported here, not at module level,
    # so that loading a question set never pulls in the document loader.
    from .converters.markdown import clean_fragment

    return clean_fragment(text)


def contains_evidence(text: str, evidence: str) -> bool:
    """True when `evidence`, cleaned, whitespace-normalised and case-folded, is a substring of `text`.

    `text` is normally a chunk's text, which the loader has already cleaned; a second, cleaned copy
    is also tried so that a raw passage (a citation's quote from the file) compares the same way.
    """
    needle = _normalise(_clean(evidence))
    return bool(needle) and (needle in _normalise(text) or needle in _normalise(_clean(text)))


def is_correct(answer_text: str, answer_any: list[list[str]]) -> bool:
    """Every group has at least one of its phrases in the answer, case-insensitively."""
    haystack = _normalise(answer_text)
    return all(any(_normalise(phrase) in haystack for phrase in group) for group in answer_any)


def _evidence_rank(hits: Iterable[Hit], evidence: str) -> int | None:
    """1-based position of the first hit holding the evidence, or None."""
    for position, hit in enumerate(hits, start=1):
        if contains_evidence(hit.text, evidence):
            return position
    return None


# --- one question -------------------------------------------------------------------------------


def _run_one(question: dict[str, Any], history: list, search: Search, ask: Ask) -> dict[str, Any]:
    """Ask one question and score it. Never raises: a failure is recorded in `error`."""
    record: dict[str, Any] = {
        "id": question["id"],
        "question": question["question"],
        "answerable": question["answerable"],
        "follow_up_of": question.get("follow_up_of"),
        "rewritten_question": None,
        "answer": None,
        "answered": False,
        "decline_reason": None,
        "correct": False,
        "evidence_rank": None,
        "evidence_in_context": None,
        "cites_evidence": None,
        "citations": [],
        # What the citation check removed: a right reply thrown away shows here (pyg05's "got faster
        # by 10-15%" was), where the final answer alone would show only the decline or stand-in.
        "removed_sentences": [],
        "timings": {},
        "error": None,
        "_answer": None,  # the Answer object, kept for follow-ups; dropped from the report
    }
    evidence = question.get("evidence") if question["answerable"] else None
    try:
        answer = ask(question["question"], history)
        record["_answer"] = answer
        record.update(
            rewritten_question=answer.rewritten_question,
            answer=answer.answer,
            answered=bool(answer.answered),
            decline_reason=answer.decline_reason,
            removed_sentences=list(answer.unsupported_sentences),
            timings={k: v for k, v in answer.timings.items() if isinstance(v, (int, float, str))},
        )
        if question["answerable"]:
            record["correct"] = record["answered"] and is_correct(answer.answer, question["answer_any"])
        else:
            record["correct"] = not record["answered"]  # for an unanswerable question, declining is right

        # Retrieval is measured on the question the bot actually searched with: for a follow-up,
        # the stand-alone rewrite ("How much did it account for?" -> "... did the CSF ...").
        search_text = answer.rewritten_question or question["question"]
        hits = search(search_text, RETRIEVAL_DEPTH)
        if evidence:
            record["evidence_rank"] = _evidence_rank(hits, evidence)
            record["evidence_in_context"] = _evidence_rank(answer.hits, evidence) is not None
        record["citations"] = _score_citations(answer, hits, evidence)
        if evidence:
            record["cites_evidence"] = any(c["on_evidence"] for c in record["citations"])
    except Exception as error:  # one broken question must not stop the run; it is counted instead
        record["error"] = f"{type(error).__name__}: {error}"
    return record


def _score_citations(answer: Answer, hits: list[Hit], evidence: str | None) -> list[dict[str, Any]]:
    # A citation names its passage by chunk_id; the passage text is found among the hits the model
    # saw, else the search hits, else the citation's own copy of the passage.
    texts = {h.chunk_id: h.text for h in list(hits) + list(answer.hits)}
    scored = []
    for citation in answer.citations:
        passage = texts.get(citation.chunk_id) or citation.passage or citation.quote
        scored.append(
            {
                "n": citation.n,
                "source": citation.source,
                "chunk_id": citation.chunk_id,
                "supported": bool(citation.supported),
                "on_evidence": bool(evidence) and contains_evidence(passage, evidence),
            }
        )
    return scored


# --- the whole set ------------------------------------------------------------------------------


def evaluate(
    questions: list[dict[str, Any]],
    *,
    search: Search,
    ask: Ask,
    progress: bool = True,
) -> dict[str, Any]:
    """Ask every question, score it, and summarise. See `_summarise` for the report's keys."""
    from tqdm import tqdm  # light, but only needed here

    by_id: dict[str, dict[str, Any]] = {}
    records = []
    started = time.perf_counter()
    for question in tqdm(questions, desc="evaluating", unit="q", file=sys.stderr, disable=not progress):
        history: list = []
        earlier_id = question.get("follow_up_of")
        if earlier_id is not None:
            earlier = by_id.get(earlier_id)
            if earlier is None or earlier["_answer"] is None:
                record = _run_one(question, [], search, _failing_ask(f"earlier question {earlier_id!r} has no answer"))
                by_id[question["id"]] = record
                records.append(record)
                continue
            history = [(earlier["question"], earlier["_answer"])]
        record = _run_one(question, history, search, ask)
        by_id[question["id"]] = record
        records.append(record)
    report = _summarise(records)
    report["wall_seconds"] = round(time.perf_counter() - started, 3)
    return report


def _failing_ask(message: str) -> Ask:
    def ask(question: str, history: list) -> Answer:
        raise RuntimeError(message)

    return ask


def _share(numerator: float, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation, as numpy's default; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 4)


def _timing_values(records: list[dict[str, Any]], key: str) -> list[float]:
    values = []
    for r in records:
        value = r["timings"].get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            values.append(float(value))
    return values


def _summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    ranks = [r["evidence_rank"] for r in answerable]  # None (a miss) for errors too
    citations = [c for r in records if r["error"] is None for c in r["citations"]]
    first_token = _timing_values(records, "first_token")
    total = _timing_values(records, "total")
    retrieval = _timing_values(records, "retrieval")
    backend = next((r["timings"]["backend"] for r in records if r["timings"].get("backend")), None)
    model = next((r["timings"]["model"] for r in records if r["timings"].get("model")), None)
    correct = sum(1 for r in answerable if r["correct"])
    return {
        "retrieval": {
            # Of the answerable questions, the share whose evidence is in the top 1 / top 5 hits.
            "recall_at_1": _share(sum(1 for rank in ranks if rank == 1), len(ranks)),
            "recall_at_5": _share(sum(1 for rank in ranks if rank is not None), len(ranks)),
            "mrr": _share(sum(1 / rank for rank in ranks if rank is not None), len(ranks)),
            "depth": RETRIEVAL_DEPTH,
        },
        "answers": {
            "accuracy": _share(correct, len(answerable)),
            "correct": correct,
            "answerable": len(answerable),
            "unanswerable": len(unanswerable),
            "declined_unanswerable": _share(sum(1 for r in unanswerable if r["correct"]), len(unanswerable)),
            "wrongly_declined": sum(1 for r in answerable if r["error"] is None and not r["answered"]),
        },
        "citations": {
            "count": len(citations),
            # Share of all citations the bot's own support check marked as supported.
            "supported": _share(sum(1 for c in citations if c["supported"]), len(citations)),
            # Share of answerable questions with at least one citation naming a passage that holds
            # the evidence: can the reader check the answer in one click?
            "on_evidence": _share(sum(1 for r in answerable if r["cites_evidence"]), len(answerable)),
        },
        "latency": {
            "first_token_p50": percentile(first_token, 50),
            "first_token_p95": percentile(first_token, 95),
            "total_p50": percentile(total, 50),
            "total_p95": percentile(total, 95),
            "retrieval_p50": percentile(retrieval, 50),
            "total_mean": round(statistics.fmean(total), 4) if total else None,
        },
        "backend": backend,
        "model": model,
        "errors": sum(1 for r in records if r["error"] is not None),
        "questions": [{k: v for k, v in r.items() if not k.startswith("_")} for r in records],
    }


def run_eval(path: Path | None, settings, as_json: bool) -> int:
    """`pakus eval`: ask every question with a real Bot, print the report, return the exit code.

    `path` defaults to the project's tests/data/seeds_qa.jsonl. The report goes to stdout (JSON
    with `as_json`), progress to stderr. Exit code 0 when every question ran, 1 when some raised.
    A bad question file or a broken index raises a PakusError for the CLI to print.
    """
    from .bot import Bot  # heavy: the embedder and the generator load behind it

    path = Path(path) if path is not None else settings.project_root / "tests" / "data" / "seeds_qa.jsonl"
    questions = load_questions(path)
    bot = Bot(settings)
    # Load the index and the models before the clock starts: latency figures are for a warm bot,
    # not "the first question also paid for loading everything".
    print("pakus: loading the index and the models ...", file=sys.stderr)
    bot.warm_up()
    report = evaluate(
        questions,
        search=lambda question, k: bot.search(question, k),
        ask=lambda question, history: bot.ask(question, history=history),
        progress=True,
    )
    report["question_file"] = str(path)
    report["k"] = bot.k  # the command's, the collection's or the default: results differ with it
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(f"questions: {path}")
        from .display import format_report

        print(format_report(report))
    return 0 if report["errors"] == 0 else 1
