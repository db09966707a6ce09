"""What would a changed citation check do to the answers of an evaluation run? No model needed.

An evaluation report (`pakus eval ... --json`) keeps each final answer, its markers and the chunks
it cited. This script rebuilds the passages the bot gave the model (the same retrieval and
selection, or the one cited passage alone when the answer came from a retry with it), runs the
current `rag.citations.check_answer` on each answered question again, and lists every answer the
check now rejects, split into right answers lost and wrong answers caught. Run it on a report made
before a change to the checks, with the changed code: a rule that loses right answers shows here in
seconds, where a new evaluation takes twenty minutes. It sees only answers that were shown; what a
change does to declines and retries needs `pakus eval`.

    PAKUS_HOME=... python benchmarks/recheck_answers.py REPORT.json:COLLECTION ...
"""

from __future__ import annotations

import json
import re
import sys

from rag.bot import Bot
from rag.citations import check_answer
from rag.passages import MAX_PASSAGE_CHARS, select_passages
from rag.retrieval import search_focus, search_parts
from rag.settings import Settings

_MISSING_PART = re.compile(r"The passages do not say .*?\?*\.(?=\s|$)")  # compound.py's notes: not claims


def passages_of(bot: Bot, question: str, cited: dict[int, str]):
    """The passages the answer's markers number, as the bot built them; None if they cannot be
    rebuilt (the collection changed, or the answer came from a retry with another passage)."""
    k = bot.k
    k = min(2 * k, k * len(search_parts(search_focus(question))))
    hits = select_passages(bot.retriever.search(question, min(2 * k, 50)), bot.documents, k,
                           max_chars=MAX_PASSAGE_CHARS * max(k, 2) // 2)
    if all(n <= len(hits) and hits[n - 1].chunk_id == chunk_id for n, chunk_id in cited.items()):
        return hits
    alone = [h for h in hits if h.chunk_id == cited.get(1)]
    return alone if len(cited) == 1 and alone else None


def main(specs: list[str]) -> None:
    lost, caught, checked, skipped = [], [], 0, 0
    for spec in specs:
        path, collection = spec.rsplit(":", 1)
        bot = Bot(Settings.from_env().with_overrides(collection=collection))
        report = json.load(open(path))
        for record in report["questions"]:
            if not record["answered"]:
                continue
            question = record["rewritten_question"] or record["question"]
            hits = passages_of(bot, question, {c["n"]: c["chunk_id"] for c in record["citations"]})
            if hits is None:
                skipped += 1
                continue
            checked += 1
            answer = _MISSING_PART.sub("", record["answer"]).strip()
            result = check_answer(answer, hits, question, bot.documents, bot.retriever.knows_word)
            if not result.declined:
                continue
            right = record["answerable"] and record["correct"]
            reasons = sorted({m for s in result.sentences if not s.supported for m in s.missing})
            (lost if right else caught).append(f"{record['id']}: {answer[:100]!r} {reasons}")
    print(f"{checked} answers checked again ({skipped} could not be rebuilt)")
    print(f"\nright answers the check now declines: {len(lost)}")
    print("\n".join(f"  {line}" for line in lost))
    print(f"\nwrong answers the check now declines: {len(caught)}")
    print("\n".join(f"  {line}" for line in caught))


if __name__ == "__main__":
    main(sys.argv[1:])
