"""Does searching with the model's guess at the answer (HyDE) find evidence the question misses?

For each answerable question with an `evidence` sentence, the model writes one sentence, as a
documentation page would word it, that answers the question from its own knowledge (no passages).
The evidence's rank in the top 20 hits (`Retriever.search`, the bot's own fused search) is then
reported three ways: searching with the question, with the guessed sentence, and with both.
Measured 2026-12-02 on the 13 failing questions of the new collections and not adopted (README,
"rejected variants"): the guess moved the evidence into the top 2 for 2 of them.

    HF_HUB_OFFLINE=1 PAKUS_HOME=/work/pakus-home \\
        python benchmarks/guessed_answer_search.py tests/data/pydocs_qa.jsonl:pydocs [ID ...]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GUESS_SYSTEM = "You are an expert who writes technical documentation."
GUESS_PROMPT = ("Write one sentence, as the documentation would word it, that answers the question below, using the "
                "technical names and terms such a document would use. Reply with the sentence only.\nQuestion: {question}\nSentence:")
DEPTH = 20


def main(argv: list[str]) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from rag.bot import Bot
    from rag.evaluation import _evidence_rank, load_questions
    from rag.settings import Settings

    if not argv or ":" not in argv[0]:
        print("usage: guessed_answer_search.py SET.jsonl:COLLECTION [ID ...]", file=sys.stderr)
        return 2
    path, collection = argv[0].rsplit(":", 1)
    wanted = set(argv[1:])
    bot = Bot(Settings.from_env().with_overrides(collection=collection))
    for question in load_questions(path):
        if (wanted and question["id"] not in wanted) or not question.get("evidence"):
            continue
        started = time.perf_counter()
        messages = [{"role": "system", "content": GUESS_SYSTEM},
                    {"role": "user", "content": GUESS_PROMPT.format(question=question["question"])}]
        guess = "".join(bot.generator.stream(messages, max_tokens=60, stop=["\n"])).strip()
        seconds = time.perf_counter() - started

        def rank(text: str) -> int | None:
            return _evidence_rank(bot.retriever.search(text, DEPTH), question["evidence"])

        print(json.dumps({"id": question["id"], "question": rank(question["question"]), "guess": rank(guess),
                          "both": rank(f"{question['question']} {guess}"), "guess_seconds": round(seconds, 1),
                          "guessed": guess}, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
