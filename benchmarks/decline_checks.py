"""Which questions does each check that declines without the model catch?

Before the model is asked, pakus declines a question that names something no document mentions
(a name, a phrase of capitalised words, an uncommon lower-case term) or that is in another
language than the collection's. A check is worth having when it catches unanswerable questions
and no answerable one. This script runs each check alone on every question of the given sets
(retrieval only, no language model) and prints, per check, the answerable and unanswerable
questions it flags.

    python benchmarks/decline_checks.py tests/data/SET.jsonl:COLLECTION ...   (PAKUS_HOME as for pakus)
"""

from __future__ import annotations

import sys
from collections import defaultdict

from rag.bot import Bot
from rag.evaluation import load_questions
from rag.relevance import other_language
from rag.settings import Settings


def checks(bot: Bot) -> dict:
    retriever = bot.retriever
    return {
        "unknown names": retriever.unknown_names,
        "unknown phrases": retriever.unknown_phrases,
        "unknown terms": retriever.unknown_terms,
        "unknown code names": retriever.unknown_code_names,
        "other language": lambda question: other_language(question, retriever.knows_word),
    }


def main(specs: list[str]) -> None:
    flagged: dict[str, dict[bool, list[str]]] = defaultdict(lambda: {True: [], False: []})
    totals = {True: 0, False: 0}
    for spec in specs:
        path, collection = spec.rsplit(":", 1)
        bot = Bot(Settings.from_env().with_overrides(collection=collection))
        for question in load_questions(path):
            if question.get("follow_up_of"):
                continue  # its words depend on the rewrite
            totals[question["answerable"]] += 1
            for name, check in checks(bot).items():
                found = check(question["question"])
                if found:
                    flagged[name][question["answerable"]].append(f"{question['id']} {found if found is not True else ''}".strip())
    print(f"{totals[True]} answerable and {totals[False]} unanswerable questions")
    for name in checks(Bot(Settings.from_env())):
        answerable, unanswerable = flagged[name][True], flagged[name][False]
        print(f"\n{name}: {len(unanswerable)} unanswerable, {len(answerable)} answerable flagged")
        for label, items in (("  unanswerable", unanswerable), ("  ANSWERABLE", answerable)):
            for item in items:
                print(f"{label}: {item}")


if __name__ == "__main__":
    main(sys.argv[1:])
