"""Is the model's own hesitation at its first token a usable, nearly free confidence signal?

For each question (follow-ups skipped), the bot's own `Bot.ask_stream` runs unchanged up to its
first answer call: same retrieval, same k (and compound-question k), same `select_passages`, same
`answer_messages` prompt, same greedy generation. Two things are observed from outside, without
changing what the bot does:
  - the llama.cpp context's logits at the first generated token (the last prompt position, which
    the greedy sampler reads anyway), taken when `Llama.generate` yields that token, before the
    next decode. P(decline) is the softmax mass, over the whole vocabulary, of the tokens whose
    text (leading whitespace dropped) begins NOT_IN_PASSAGES ("NOT", " NOT", "NO", "N", ...);
  - the first call of `check_answer` (the first-pass answer as the bot checks it); the question
    stops there (no retries, quoting or part-by-part asking: they are not the first pass).
The prompt's tokens are compared with `chat_tokens(answer_messages(question, checked hits))`, and
the recorded first token with the logits' argmax, so a mismatch would be reported, not hidden.

A first-pass answer is RIGHT when the question is answerable and `is_correct(checked text,
answer_any)`; WRONG when answerable and not correct, or when the question is unanswerable. Only
answers that survive the citation check (not `declined`) are scored: the AUC of P(decline)
separating WRONG (higher) from RIGHT, and per threshold how many WRONG answers a "decline when
P(decline) >= t" rule would catch and how many RIGHT ones it would lose, per set and in total.
The cost is the seconds spent reading the logits and computing P(decline) (no extra model pass;
llama-cpp-python's own `logprobs=` would need `logits_all=True`, logits for every prompt token).

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PAKUS_HOME=/work/pakus-home \\
        python benchmarks/first_token_doubt.py tests/data/seeds_qa.jsonl:seeds ... [--out rows.json]
    python benchmarks/first_token_doubt.py --rows rows.json     (the report again, from a run's rows)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.judge import percentile, rows_arguments  # noqa: E402

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
TOP = 5  # first-token alternatives kept per row, for reading the rows


class FirstPass(Exception):
    """Raised from the bot's first `check_answer` call: the first pass is all this measures."""

    def __init__(self, text, hits, question, checked):
        super().__init__("first pass done")
        self.text, self.hits, self.question, self.checked = text, hits, question, checked


class FirstTokenProbe:
    """Wraps the generator's `Llama.generate` (an instance attribute over the bound method) so that
    each call records, at its first yielded token, the prompt tokens and the next-token
    distribution the sampler used. The bot's generator code runs as it is."""

    def __init__(self, generator):
        import numpy as np

        from rag.prompts import NOT_FOUND

        self.generator = generator
        self.llm = llm = generator._llm
        self.n_vocab = llm.n_vocab()
        self.decline_ids = []
        for token in range(self.n_vocab):
            piece = llm.detokenize([token], special=False).decode("utf-8", errors="replace").lstrip()
            if piece and NOT_FOUND.startswith(piece):
                self.decline_ids.append(token)
        self.not_ids = [t for t in self.decline_ids if self.piece(t).strip() == "NOT"]
        self._np = np
        self.calls: list[dict] = []
        original = llm.generate

        def generate(tokens, *args, **kwargs):
            steps = original(tokens, *args, **kwargs)
            first = True
            started = time.perf_counter()
            try:
                for token in steps:
                    if first:
                        first = False
                        self.calls.append(dict(self.read(token), prompt=list(tokens),
                                               first_token_s=time.perf_counter() - started))
                    yield token
            finally:
                steps.close()

        llm.generate = generate

    def piece(self, token: int) -> str:
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def read(self, token: int) -> dict:
        """P(decline) of the distribution the first token was sampled from, and what it cost."""
        np = self._np
        started = time.perf_counter()
        logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.n_vocab,)).astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        p_decline = float(probs[self.decline_ids].sum())
        seconds = time.perf_counter() - started
        top = np.argsort(-probs)[:TOP]
        return dict(p_decline=p_decline, p_not=float(probs[self.not_ids].sum()), token=int(token),
                    token_text=self.piece(int(token)), argmax=int(top[0]), logprob_seconds=seconds,
                    top=[[self.piece(int(t)), round(float(probs[t]), 4)] for t in top])


def first_pass(bot, probe: FirstTokenProbe, question: str) -> dict:
    """Run `bot.ask_stream(question)` to its first checked answer; what the bot decided and saw."""
    import rag.bot

    real_check = rag.bot.check_answer

    def check_once(text, hits, question_, documents, known=None):
        checked = real_check(text, hits, question_, documents, known)
        raise FirstPass(text, hits, question_, checked)

    probe.calls.clear()
    started = time.perf_counter()
    rag.bot.check_answer = check_once
    try:
        for item in bot.ask_stream(question):
            if isinstance(item, rag.bot.Answer):  # finished without asking the model
                return dict(stage="before_model", decline_reason=item.decline_reason, seconds=time.perf_counter() - started)
        raise RuntimeError("ask_stream ended without an answer")
    except FirstPass as stopped:
        seconds = time.perf_counter() - started
        done = stopped  # the `as` name is unbound when the except block ends
    finally:
        rag.bot.check_answer = real_check
    from rag.prompts import answer_messages

    if len(probe.calls) != 1:
        raise RuntimeError(f"expected one model call before the first check, saw {len(probe.calls)}")
    call = probe.calls[0]
    expected = bot.generator.chat_tokens(answer_messages(done.question, done.hits))
    checked = done.checked
    return dict(stage="model", seconds=seconds, raw=done.text, checked_text=checked.text, survived=not checked.declined,
                n_passages=len(done.hits), prompt_tokens=len(call["prompt"]), prompt_exact=call.pop("prompt") == expected,
                **call)


def label(row: dict) -> str | None:
    """RIGHT / WRONG for a first-pass answer that survived the check, else None."""
    if row.get("stage") != "model" or not row["survived"]:
        return None
    return "RIGHT" if row["answerable"] and row["correct"] else "WRONG"


def auc(wrong: list[float], right: list[float]) -> float | None:
    """P(a WRONG answer's P(decline) is above a RIGHT one's), ties half."""
    if not wrong or not right:
        return None
    return sum((w > r) + 0.5 * (w == r) for w in wrong for r in right) / (len(wrong) * len(right))


def report(rows: list[dict]) -> None:
    sets = list(dict.fromkeys(r["set"] for r in rows))
    model = [r for r in rows if r["stage"] == "model"]
    print(f"\n{len(rows)} questions (follow-ups skipped): {len(rows) - len(model)} declined before the model; "
          f"{len(model)} asked. First-pass prompt rebuilt exactly: {sum(r['prompt_exact'] for r in model)}/{len(model)}; "
          f"greedy token = argmax of the read logits: {sum(r['token'] == r['argmax'] for r in model)}/{len(model)}")

    print("\n## First pass, per set\n")
    print("| set | asked | first token a decline | answered, check declines | survives: RIGHT | survives: WRONG (answerable / unanswerable) | AUC |")
    print("|---|---|---|---|---|---|---|")
    for name in sets + ["total"]:
        part = [r for r in model if name in ("total", r["set"])]
        declines = sum(r["decline_start"] for r in part)
        failed = sum(not r["decline_start"] and not r["survived"] for r in part)
        right = [r["p_decline"] for r in part if label(r) == "RIGHT"]
        wrong = [r for r in part if label(r) == "WRONG"]
        area = auc([r["p_decline"] for r in wrong], right)
        print(f"| {name} | {len(part)} | {declines} | {failed} | {len(right)} | {len(wrong)} "
              f"({sum(r['answerable'] for r in wrong)} / {sum(not r['answerable'] for r in wrong)}) | "
              f"{'-' if area is None else f'{area:.3f}'} |")
    survived_decline_start = [r for r in model if r["survived"] and r["decline_start"]]
    if survived_decline_start:
        print(f"\n(first token starts a decline yet the answer survives: {', '.join(r['id'] for r in survived_decline_start)})")

    print("\n## Decline when P(decline) >= t: WRONG caught / RIGHT lost (first-pass answers that survive the check)\n")
    print("| set | " + " | ".join(f"t={t}" for t in THRESHOLDS) + " |")
    print("|---|" + "---|" * len(THRESHOLDS))
    for name in sets + ["total"]:
        part = [r for r in model if name in ("total", r["set"]) and label(r)]
        right = [r for r in part if label(r) == "RIGHT"]
        wrong = [r for r in part if label(r) == "WRONG"]
        cells = [f"{sum(r['p_decline'] >= t for r in wrong)}/{len(wrong)} caught, {sum(r['p_decline'] >= t for r in right)}/{len(right)} lost"
                 for t in THRESHOLDS]
        print(f"| {name} | " + " | ".join(cells) + " |")

    scored = [r for r in model if label(r)]
    print("\n## P(decline) distribution of surviving answers")
    for kind in ("RIGHT", "WRONG"):
        values = sorted(r["p_decline"] for r in scored if label(r) == kind)
        if values:
            print(f"- {kind}: n={len(values)}, median {statistics.median(values):.4f}, p90 {percentile(values, 0.9):.4f}, "
                  f"max {values[-1]:.4f}; >= 0.05: {sum(v >= 0.05 for v in values)}")

    cost = [r["logprob_seconds"] * 1000 for r in model]
    first = [r["first_token_s"] for r in model]
    whole = [r["seconds"] for r in model]
    print(f"\n## Cost: reading the first token's logits and P(decline): median {statistics.median(cost):.2f} ms, "
          f"p95 {percentile(cost, 0.95):.2f} ms, max {max(cost):.2f} ms per answer; for scale, the first call's time "
          f"to first token median {statistics.median(first):.2f} s and the first pass in all median {statistics.median(whole):.2f} s")

    print("\n## Surviving WRONG answers, highest P(decline) first")
    for r in sorted((r for r in scored if label(r) == "WRONG"), key=lambda r: -r["p_decline"]):
        kind = "answerable" if r["answerable"] else "unanswerable"
        print(f"- {r['id']} ({r['set']}, {kind}) {r['p_decline']:.3f} first {r['token_text']!r}  Q: {r['question']}  "
              f"A: {r['checked_text'][:140]}")
    print("\n## Surviving RIGHT answers with P(decline) >= 0.05")
    for r in sorted((r for r in scored if label(r) == "RIGHT" and r["p_decline"] >= 0.05), key=lambda r: -r["p_decline"]):
        print(f"- {r['id']} ({r['set']}) {r['p_decline']:.3f} first {r['token_text']!r}  Q: {r['question']}  A: {r['checked_text'][:140]}")


def main(argv: list[str]) -> None:
    from rag.bot import Bot
    from rag.evaluation import is_correct, load_questions
    from rag.generators import load_generator
    from rag.settings import Settings

    argv, out = rows_arguments(argv, Path("first_token_doubt_rows.json"), __doc__, report)
    if out is None:
        return
    settings = Settings.from_env()
    generator = load_generator(settings)
    if not hasattr(generator, "_llm"):
        sys.exit(f"needs the llama-cpp backend (its logits); got {generator.backend}")
    probe = FirstTokenProbe(generator)
    print(f"model {generator.model_name}; tokens that begin a decline: "
          f"{[probe.piece(t) for t in probe.decline_ids]}", file=sys.stderr)
    rows: list[dict] = []
    bots: dict[str, Bot] = {}
    for spec in argv:
        path, collection = spec.rsplit(":", 1)
        if collection not in bots:
            bot = Bot(settings.with_overrides(collection=collection), generator=generator)
            if bots:
                bot.share_models_with(next(iter(bots.values())))
            bot.warm_up()
            bots[collection] = bot
        bot = bots[collection]
        questions = [q for q in load_questions(path) if not q.get("follow_up_of")]
        for i, q in enumerate(questions, start=1):
            row = dict(set=Path(path).stem, collection=collection, id=q["id"], question=q["question"],
                       answerable=q["answerable"], kind=q.get("kind"))
            row.update(first_pass(bot, probe, q["question"]))
            if row["stage"] == "model":
                row["decline_start"] = row["token"] in probe.decline_ids
                row["correct"] = bool(q["answerable"] and row["survived"] and is_correct(row["checked_text"], q["answer_any"]))
                shown = (f"P(decline) {row['p_decline']:.3f} first {row['token_text']!r} "
                         f"{'survives' if row['survived'] else 'check declines'} {label(row) or ''}")
            else:
                shown = f"declined before the model ({row['decline_reason']})"
            print(f"[{spec} {i}/{len(questions)}] {q['id']} {shown} ({row['seconds']:.1f} s)", file=sys.stderr, flush=True)
            rows.append(row)
    out.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    print(f"rows written to {out}", file=sys.stderr)
    report(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
