"""Can the language model itself, as a judge, tell a verified-but-wrong answer from a right one?

Reads evaluation reports (`pakus eval FILE --json`) and takes every answered question as a case:
GOOD when the question is answerable and the answer correct, BAD when it is wrong or when the
question is one the documents cannot answer. Identical (question, answer) pairs are counted once.
Each case's answer prompt is rebuilt as pakus built it (same retrieval, `select_passages`,
`answer_messages`); where a citation's chunk is not the passage of that number there (the answer
came from a retry with fewer passages, or retrieval changed), that position holds the cited chunk.

Judges, all on the same llama.cpp model and chat template as pakus, greedy, one forward pass each:
  followup    the answer's own conversation, the answer as the assistant's turn, then a user turn
              asking whether the cited passage states this answer about the question's subject;
              only the tokens after the cached prompt + answer are evaluated
  standalone  under a one-line system message of its own: only the cited passage text(s), the
              question and the answer without markers, and the same kind of question
  passage_answers  the same prompt without the answer: "Does the passage answer this question?"
              (run after the standalone judge, it shares its passage and question: ~20 tokens more)
  cosine      the embedder's cosine between the question and the cited passage (best citation)
A judge's score for the model judges is P(yes) / (P(yes) + P(no)) for the next token, yes and no
in their spellings (yes, Yes, YES, with or without a leading space). A case is rejected when its
score is below the threshold. Seconds and tokens are those of the judge's own evaluation only.
Two passes: the standalone judges for every case, then the follow-up judge, so that pakus's own
system prefix stays cached between cases as it does in the bot (priming a case's answer prompt is
not counted: pakus had evaluated it already).

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PAKUS_HOME=/work/pakus-home \\
        python benchmarks/judge.py /tmp/judge_inputs/*.json [--out rows.json]
    python benchmarks/judge.py --rows rows.json     (the report again, from a run's rows)

The collection comes from each report's question file (seeds, extra, holdout: the seeds); k from
a file name starting `k<N>_`, else the collection's own.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FOLLOWUP = ("Does passage {cited} state this answer to the question, about the subject the question asks about "
            "(with its qualifiers, such as first or last, and the role asked for)? Reply yes or no.")
PASSAGE_QUESTION = "Passage:\n{passage}\n\nQuestion: {question}\n"
STANDALONE = ("Proposed answer: {answer}\n\nDoes the passage say this, about the subject the question asks about, "
              "and does it answer the question exactly as asked (first or last, role or name)? Reply yes or no.")
PASSAGE_ANSWERS = "\nDoes the passage answer this question? Reply yes or no."
OWN_SYSTEM = "You check whether an answer is stated by a passage. Reply with yes or no only."
MODEL_JUDGES = ("followup", "standalone", "passage_answers")
LOST_AT = {"followup": 0.6, "standalone": 0.7, "passage_answers": 0.7}  # GOOD cases listed below these
THRESHOLDS = {**{name: (0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9) for name in MODEL_JUDGES}, "cosine": (0.3, 0.4, 0.5, 0.6)}


def collection_of(question_file: str) -> str:
    name = Path(question_file).stem.removesuffix("_qa").removesuffix("_holdout")
    return "seeds" if name in ("seeds", "extra", "holdout") else name


def load_cases(paths: list[str]) -> list[dict]:
    cases, seen = [], set()
    for path in paths:
        report = json.loads(Path(path).read_text())
        k = re.match(r"k(\d+)_", Path(path).name)
        for record in report["questions"]:
            key = (record["question"], record["answer"])
            if not record["answered"] or key in seen:
                continue
            seen.add(key)
            good = record["answerable"] and record["correct"]
            cases.append(dict(record, file=Path(path).name, collection=collection_of(report["question_file"]),
                              k=int(k.group(1)) if k else None, label="GOOD" if good else "BAD"))
    return cases


def passages(bot, question: str, k: int) -> list:
    """The passages pakus gave the model for `question` (as in Bot.ask_stream)."""
    from rag.passages import MAX_PASSAGE_CHARS, select_passages
    from rag.retrieval import search_parts, search_focus

    k = min(2 * k, k * len(search_parts(search_focus(question))))
    hits = bot.retriever.search(question, min(2 * k, 50))
    return select_passages(hits, bot.documents, k, max_chars=MAX_PASSAGE_CHARS * max(k, 2) // 2)


def prompt_passages(bot, case: dict, k: int) -> tuple[list, bool]:
    """The numbered passages of the answer prompt, and whether every citation matched them exactly."""
    shown = [SimpleNamespace(text=h.text, chunk_id=h.chunk_id) for h in passages(bot, case["asked"], k)]
    exact = True
    for c in case["citations"]:
        n = c["n"]
        if n <= len(shown) and shown[n - 1].chunk_id == c["chunk_id"]:
            continue
        exact = False
        chunk = bot.collection.store.chunks([c["chunk_id"]]).get(c["chunk_id"])
        if chunk is None:  # a passage merged from neighbours has an id of its own, not in the store
            sys.exit(f"{case['file']} {case['id']}: cited passage {c['chunk_id']} is neither retrieved again nor a chunk "
                     f"of collection {case['collection']!r}; did it change since the evaluation?")
        while len(shown) < n:
            shown.append(SimpleNamespace(text="", chunk_id=""))
        shown[n - 1] = SimpleNamespace(text=chunk.text, chunk_id=c["chunk_id"])
    return shown, exact


class Judge:
    """A llama.cpp model whose KV cache is reused the way Llama.generate reuses it."""

    def __init__(self, settings):
        from rag.generators import load_generator

        self.generator = load_generator(settings)
        self.llm = self.generator._llm
        self.n_vocab = self.llm.n_vocab()
        tokens = lambda words: sorted({self.llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in words})
        self.yes = tokens(["yes", "Yes", "YES", " yes", " Yes", " YES"])
        self.no = tokens(["no", "No", "NO", " no", " No", " NO"])
        self.llm.reset()

    def evaluate(self, tokens: list[int]):
        """Evaluate what of `tokens` the cache does not hold: the P(yes) share `p` of the next token,
        the yes + no probability `mass`, and the `tokens` evaluated in how many `seconds`."""
        import numpy as np

        held = self.llm.input_ids[: self.llm.n_tokens].tolist()
        common = 0
        for a, b in zip(held, tokens):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # the last token is evaluated again for its logits
        self.llm.n_tokens = common
        self.generator._fit_threads()
        started = time.perf_counter()
        self.llm.eval(tokens[common:])
        seconds = time.perf_counter() - started
        logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.n_vocab,)).astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        yes, no = probs[self.yes].sum(), probs[self.no].sum()
        return dict(p=float(yes / (yes + no)), mass=float(yes + no), tokens=len(tokens) - common, seconds=seconds)


def standalone_judges(judge: Judge, bot, case: dict, k: int) -> dict:
    """The judges that need no answer prompt: the standalone prompt and the embedder."""
    from rag.citations import strip_markers

    shown, exact = prompt_passages(bot, case, k)
    case["shown"] = [p.text for p in shown]  # for the follow-up judge's pass
    numbers = sorted({c["n"] for c in case["citations"]})
    text = "\n\n".join(shown[n - 1].text for n in numbers)
    gen = judge.generator
    head = PASSAGE_QUESTION.format(passage=text, question=case["asked"])
    system = {"role": "system", "content": OWN_SYSTEM}
    row = dict(exact=exact)
    answer = strip_markers(case["answer"]).strip()
    row["standalone"] = judge.evaluate(gen.chat_tokens([system, {"role": "user", "content": head + STANDALONE.format(answer=answer)}]))
    row["passage_answers"] = judge.evaluate(gen.chat_tokens([system, {"role": "user", "content": head + PASSAGE_ANSWERS}]))
    started = time.perf_counter()
    vectors = bot.embedder.embed([case["asked"]] + [shown[n - 1].text for n in numbers])
    cosines = [float(vectors[0] @ v) for v in vectors[1:]]
    row["cosine"] = dict(p=max(cosines, default=0.0), tokens=0, seconds=time.perf_counter() - started)
    return row


def followup_judge(judge: Judge, case: dict) -> dict:
    """The answer's own conversation, continued: pakus's cached prompt + answer, then one user turn."""
    from rag.prompts import answer_messages

    shown = [SimpleNamespace(text=t) for t in case.pop("shown")]
    messages = answer_messages(case["asked"], shown)
    gen = judge.generator
    # What pakus evaluated to write the answer: the prompt and the answer's tokens.
    primed = gen.chat_tokens(messages) + judge.llm.tokenize(case["answer"].encode(), add_bos=False, special=False)
    prime = judge.evaluate(primed)
    numbers = sorted({c["n"] for c in case["citations"]})
    follow = messages + [{"role": "assistant", "content": case["answer"]},
                         {"role": "user", "content": FOLLOWUP.format(cited=" and ".join(f"[{n}]" for n in numbers))}]
    return dict(prime_tokens=prime["tokens"], followup=judge.evaluate(gen.chat_tokens(follow)))


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def report(cases: list[dict]) -> None:
    good = [c for c in cases if c["label"] == "GOOD"]
    bad = [c for c in cases if c["label"] == "BAD"]
    exact = sum(c["exact"] for c in cases)
    print(f"\n{len(cases)} answered cases: {len(good)} GOOD, {len(bad)} BAD; "
          f"answer prompt rebuilt exactly for {exact}, with a cited chunk put in place for {len(cases) - exact}")
    print(f"priming (the answer prompt + answer, not a judge cost): median {statistics.median(c['prime_tokens'] for c in cases)} tokens")
    for name, thresholds in THRESHOLDS.items():
        seconds = [c[name]["seconds"] for c in cases]
        tokens = [c[name]["tokens"] for c in cases]
        print(f"\n## {name}: extra seconds median {statistics.median(seconds):.2f}, p95 {percentile(seconds, 0.95):.2f}; "
              f"tokens evaluated median {statistics.median(tokens):.0f}, p95 {percentile(tokens, 0.95):.0f}")
        if name != "cosine":
            masses = [c[name]["mass"] for c in cases]
            print(f"   P(yes)+P(no) of the next token: median {statistics.median(masses):.3f}, min {min(masses):.3f}")
        auc = sum((b[name]["p"] < g[name]["p"]) + 0.5 * (b[name]["p"] == g[name]["p"]) for b in bad for g in good)
        print(f"   AUC (a GOOD case scores above a BAD one): {auc / max(1, len(bad) * len(good)):.3f}")
        print("| reject below | BAD caught | GOOD lost |\n|---|---|---|")
        for t in thresholds:
            caught = sum(c[name]["p"] < t for c in bad)
            lost = sum(c[name]["p"] < t for c in good)
            print(f"| {t} | {caught}/{len(bad)} | {lost}/{len(good)} |")
    print(f"\n## BAD cases (scores: {' / '.join(THRESHOLDS)})")
    for c in sorted(bad, key=lambda c: c["followup"]["p"]):
        print(f"- {c['id']} ({c['file']}) {scores(c)}  Q: {c['question']}  A: {c['answer']}")
    for name, t in LOST_AT.items():
        lost = sorted((c for c in good if c[name]["p"] < t), key=lambda c: c[name]["p"])
        print(f"\n## GOOD cases {name} rejects below {t}: {len(lost)}")
        for c in lost:
            print(f"- {c['id']} ({c['file']}) {c[name]['p']:.2f}  Q: {c['question']}  A: {c['answer'][:160]}")


def scores(case: dict) -> str:
    return " / ".join(f"{case[n]['p']:.2f}" for n in THRESHOLDS)


def rows_arguments(argv: list[str], out: Path, usage: str, report) -> tuple[list[str], Path | None]:
    """The arguments left and where a run's rows go (`--out FILE`). `--rows FILE` prints the report
    of a saved run again, without the model, and returns None for the rows' file: nothing to run."""
    if "--out" in argv:
        at = argv.index("--out")
        out = Path(argv[at + 1])
        argv = argv[:at] + argv[at + 2:]
    if not argv:
        sys.exit(usage)
    if argv[0] == "--rows":
        report(json.loads(Path(argv[1]).read_text()))
        return argv, None
    return argv, out


def main(argv: list[str]) -> None:
    from rag.bot import Bot
    from rag.collections import answer_k
    from rag.settings import Settings

    argv, out = rows_arguments(argv, Path("judge_rows.json"), __doc__, report)
    if out is None:
        return
    cases = load_cases(argv)
    settings = Settings.from_env()
    judge = Judge(settings)
    bots: dict[str, Bot] = {}
    for i, case in enumerate(cases, start=1):
        case["asked"] = case["rewritten_question"] or case["question"]
        if case["collection"] not in bots:
            bots[case["collection"]] = Bot(settings.with_overrides(collection=case["collection"]))
            bots[case["collection"]].share_models_with(next(iter(bots.values())))
        bot = bots[case["collection"]]
        case.update(standalone_judges(judge, bot, case, answer_k(settings.with_overrides(k=case["k"]), bot.collection.info)))
        print(f"[{i}/{len(cases)}] {case['id']} {case['label']} standalone {case['standalone']['p']:.2f} "
              f"({case['standalone']['seconds']:.2f} s)", file=sys.stderr, flush=True)
    for i, case in enumerate(cases, start=1):
        case.update(followup_judge(judge, case))
        print(f"[{i}/{len(cases)}] {case['id']} {case['label']} followup {case['followup']['p']:.2f} "
              f"({case['followup']['seconds']:.2f} s)", file=sys.stderr, flush=True)
    out.write_text(json.dumps(cases, indent=1, ensure_ascii=False))
    report(cases)


if __name__ == "__main__":
    main(sys.argv[1:])
