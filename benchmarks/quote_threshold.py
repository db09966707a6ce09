"""How much of a question must a passage sentence hold to be quoted as the answer?

When the model declines with the evidence in hand, pakus can quote the passage sentence that
shares most of the question's word stems (less the words of the document's title). This script
measures, without the language model, on every question set: for each question, the best such
sentence in the passages the model would see, how many of the question's stems it holds, what
share, and whether it holds the answer. A threshold is safe when no unanswerable question reaches
it; useful by how many answerable ones do, with the answer in the quoted sentence.

    python benchmarks/quote_threshold.py SET.jsonl:COLLECTION ...   (PAKUS_HOME as for pakus)
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from rag.bot import Bot
from rag.sentences import sentence_spans
from rag.evaluation import is_correct, load_questions
from rag.lexical import stems
from rag.passages import select_passages
from rag.settings import Settings


def best_sentence(hits, question):
    best = (0, 0.0, "")
    for hit in hits:
        focus = stems(question) - stems(hit.title)
        for start, end in sentence_spans(hit.text):
            sentence = hit.text[start:end]
            overlap = len(focus & stems(sentence))
            if overlap > best[0]:
                best = (overlap, overlap / max(1, len(focus)), sentence)
    return best


def main(specs: list[str]) -> None:
    rows = []
    for spec in specs:
        path, collection = spec.split(":")
        bot = Bot(Settings.from_env().with_overrides(collection=collection))
        for question in load_questions(path):
            if question.get("follow_up_of"):
                continue  # its words depend on the rewrite
            hits = select_passages(bot.retriever.search(question["question"], 4), bot.documents, bot.k)
            overlap, share, sentence = best_sentence(hits, question["question"])
            holds = question["answerable"] and is_correct(sentence, question["answer_any"])
            rows.append((spec, question["id"], question["answerable"], overlap, round(share, 2), holds))
    print(json.dumps(rows))
    print("\nthreshold (stems, share): answerable quoted with the answer / answerable quoted / unanswerable quoted", file=sys.stderr)
    for min_stems in (2, 3, 4):
        for min_share in (0.5, 0.6, 0.75):
            passing = [r for r in rows if r[3] >= min_stems and r[4] >= min_share]
            counts = Counter((r[2], r[5]) for r in passing)
            print(f"  >= {min_stems}, >= {min_share:.2f}: {counts[(True, True)]} / {counts[(True, True)] + counts[(True, False)]} / "
                  f"{counts[(False, False)]}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
