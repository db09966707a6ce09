"""Retrieval thresholds re-measured on every question set at once, without the language model.

For each set (QUESTIONS.jsonl:COLLECTION), prints:
- evidence recall at 1, 2 and 5 for several fusion constants (rrf_k), so the constant is chosen on
  all collections together, not on the seeds;
- for the evidence floors (bot.MIN_DENSE_SCORE / MIN_LEXICAL_SCORE: below both, a question is
  declined without the model), the weakest best-scores of answerable questions and how many
  unanswerable ones the floors stop.

    PAKUS_HOME=... python benchmarks/retrieval_sweep.py tests/data/seeds_qa.jsonl:seeds tests/data/wiki300_qa.jsonl:wiki300 ...
"""

from __future__ import annotations

import sys

from rag.bot import MIN_DENSE_SCORE, MIN_LEXICAL_SCORE, Bot, has_evidence
from rag.evaluation import contains_evidence, load_questions
from rag.retrieval import Retriever
from rag.settings import Settings

RRF_CONSTANTS = (1, 3, 5, 10, 30, 60)


def rank_of(hits, evidence: str) -> int | None:
    return next((i for i, h in enumerate(hits, start=1) if contains_evidence(h.text, evidence)), None)


def main(specs: list[str]) -> None:
    totals = {c: [0, 0, 0] for c in RRF_CONSTANTS}
    answerable_total = 0
    print("| set | rrf_k | recall@1 | recall@2 | recall@5 |\n|---|---|---|---|---|")
    floors = []
    for spec in specs:
        path, collection = spec.split(":")
        bot = Bot(Settings.from_env().with_overrides(collection=collection))
        questions = [q for q in load_questions(path) if not q.get("follow_up_of")]
        answerable = [q for q in questions if q["answerable"]]
        answerable_total += len(answerable)
        base = bot.retriever
        for constant in RRF_CONSTANTS:
            retriever = Retriever(base.store, base.embedder, {}, candidates=base.candidates, rrf_k=constant)
            retriever._document_words, retriever._metadata_words = base._document_words, base._metadata_words
            ranks = [rank_of(retriever.search(q["question"], 5), q["evidence"]) for q in answerable]
            found = [sum(1 for r in ranks if r is not None and r <= depth) for depth in (1, 2, 5)]
            for i, n in enumerate(found):
                totals[constant][i] += n
            print(f"| {spec} | {constant} | {found[0]}/{len(answerable)} | {found[1]}/{len(answerable)} | {found[2]}/{len(answerable)} |")
        for q in questions:
            hits = base.search(q["question"], 10)
            best_dense = max((h.dense_score or 0.0 for h in hits), default=0.0)
            best_lexical = max((h.lexical_score or 0.0 for h in hits), default=0.0)
            floors.append((spec, q["id"], q["answerable"], round(best_dense, 3), round(best_lexical, 2), has_evidence(hits)))
    print("\n| rrf_k | recall@1 | recall@2 | recall@5 | (all sets) |\n|---|---|---|---|---|")
    for constant, found in totals.items():
        print(f"| {constant} | {found[0]}/{answerable_total} | {found[1]}/{answerable_total} | {found[2]}/{answerable_total} | |")
    stopped_answerable = [f for f in floors if f[2] and not f[5]]
    stopped_unanswerable = [f for f in floors if not f[2] and not f[5]]
    print(f"\nevidence floors (dense {MIN_DENSE_SCORE}, BM25 {MIN_LEXICAL_SCORE}): stop {len(stopped_unanswerable)} of "
          f"{sum(1 for f in floors if not f[2])} unanswerable and {len(stopped_answerable)} of {sum(1 for f in floors if f[2])} answerable")
    weakest = sorted((f for f in floors if f[2]), key=lambda f: (f[3], f[4]))[:5]
    print("weakest answerable (set, id, dense, bm25):", [(f[0].split(':')[1], f[1], f[3], f[4]) for f in weakest])
    strongest = sorted((f for f in floors if not f[2]), key=lambda f: (f[3], f[4]))[:8]
    print("weakest unanswerable:", [(f[0].split(':')[1], f[1], f[3], f[4]) for f in strongest])


if __name__ == "__main__":
    main(sys.argv[1:])
