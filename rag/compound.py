"""Questions that ask several things: every part answered, or said plainly to be unanswered.

Small models answer the first part of a compound question and drop the rest ("When did X open,
and what record did it hold?" answered with the date), answer "When ...?" with who did it, or
decline the whole question when two parts compete for their attention. After the first answer is
checked, the bot hands it here:

- `complete_parts`: each part the answer left out is asked for again (or quoted from the passage
  sentence the answer rests on, when it states the part too); a part still unanswered gets a
  sentence saying the passages do not say it;
- `answer_by_parts`: a compound question (or one asked of two named subjects at once) that was
  declined as a whole is asked one part at a time, and answered if any part is.

Both take `generate(messages)`, a generator of the model's reply that returns the whole reply
(`Bot._generate`), and `check(text, question)`, the citation check over the same passages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator

from .citations import CheckedAnswer, merge_answers, strip_markers
from .prompts import answer_messages
from .relevance import (answers_part, kind_asked, mentions_own_names, question_parts, subject_parts, thing_asked,
                        unanswered_parts)
from .schema import Hit
from .sentences import says_what_is_asked

Generate = Callable[[list[dict[str, str]]], Iterator[str]]
Check = Callable[[str, str], CheckedAnswer]
_KIND_ASKED = {"time": "year or date", "number": "number", "person": "name of the person", "name": "name"}


def complete_parts(question: str, hits: list[Hit], checked: CheckedAnswer, generate: Generate,
                   check: Check) -> Generator[str, None, CheckedAnswer]:
    """Ask again for each part of a compound question that the answer left out ("When ...,
    and with whom?" answered with the year only), and say plainly which parts the passages
    do not answer. Streams what it adds; returns the completed CheckedAnswer."""
    missing = unanswered_parts(question, strip_markers(checked.text))
    if missing == [question]:
        # A simple question answered with something else than it asks for ("When ...?" with
        # who did it): asked once more, and declined if the answer is still not of that kind.
        yield " "
        wanted = _KIND_ASKED.get(kind_asked(question)) or thing_asked(question) or "fact"
        text = yield from generate(answer_messages(f"{question} Answer with the {wanted} only.", hits))
        retry = check(text, question)
        if not retry.declined and answers_part(question, strip_markers(retry.text), question):
            return retry
        return CheckedAnswer("", checked.sentences, [], checked.unsupported + [strip_markers(checked.text)], declined=True)
    for part in missing:
        yield " "
        extra = yield from _answer_part(question, part, hits, generate, check, repeated=strip_markers(checked.text))
        if extra is None:
            extra = _from_quoted_sentence(question, part, checked, check)
            if extra is not None:
                yield extra.text
        if extra is not None:
            checked = merge_answers(checked, extra)
        else:
            note = _not_said(part)
            yield note
            checked = merge_answers(checked, CheckedAnswer(note, [], [], [], declined=False))
    return checked


def answer_by_parts(question: str, hits: list[Hit], generate: Generate, check: Check) -> Generator[str, None, CheckedAnswer | None]:
    """A compound question declined as a whole, asked one part at a time (measured: wk14, "In
    which years did Toni Morrison and Kenzaburō Ōe receive the Nobel Prize?", evidence for both in
    the passages, was declined with both passages and with each alone). None when no part is
    answered; otherwise the parts answered, and a sentence for each part that is not."""
    parts = question_parts(question)
    if len(parts) < 2:
        parts = subject_parts(question, " ".join(h.text for h in hits))
    if len(parts) < 2:
        return None
    pieces: list[CheckedAnswer | str] = []
    for part in parts:
        # Not streamed: if no part is answered, nothing of these replies is shown.
        extra = yield from _silent(_answer_part(question, part, hits, generate, check, repeated=""))
        pieces.append(extra if extra is not None else _not_said(part))
    if all(isinstance(piece, str) for piece in pieces):
        return None
    answer = CheckedAnswer("", [], [], [], declined=True)
    for piece in pieces:
        answer = merge_answers(answer, CheckedAnswer(piece, [], [], [], declined=False) if isinstance(piece, str) else piece)
    yield answer.text
    return answer


def _answer_part(question: str, part: str, hits: list[Hit], generate: Generate, check: Check,
                 repeated: str) -> Generator[str, None, CheckedAnswer | None]:
    """The checked answer to one part of `question`, or None when the model's reply does not
    answer it: declined, of another kind than the part asks for, silent about the part's own
    names, or only `repeated` (what was already answered) said again."""
    # A part that is a question of its own (one subject of two) is asked as it is; the later
    # part of "When ..., and with whom?" needs the whole question around it.
    within = part in question
    asked = question if within else part
    prompt = f"{question} Answer only this part: {part}" if within else part
    text = yield from generate(answer_messages(prompt, hits))
    extra = check(text, asked)
    extra_text = strip_markers(extra.text)
    # An extra answer that repeats the answer ("30 million people" again, for "what share
    # ...?") has not answered the part, however well it fits the part's kind.
    repeats = bool(repeated) and " ".join(extra_text.split()).lower() in " ".join(repeated.split()).lower()
    if extra.declined or repeats or not answers_part(part, extra_text, asked) \
            or not mentions_own_names(part, asked, extra_text):
        return None
    return extra


def _from_quoted_sentence(question: str, part: str, checked: CheckedAnswer, check: Check) -> CheckedAnswer | None:
    """The part answered by the passage sentence the answer itself rests on, quoted: one sentence
    often states both ("affected some 30 million people, which was about one third of the
    population of the area"), and asked again, the model repeated the first (wkh07). Only for a
    part asking for a time, a number or a person, when the sentence holds one the answer has not
    given and says something of the part itself."""
    if kind_asked(part) not in ("time", "number", "person"):
        return None  # "what is it called?": any new word would do, so any sentence would seem to answer
    given = f"{question} {strip_markers(checked.text)}"
    for citation in checked.citations:
        quote = " ".join(citation.quote.split())
        if answers_part(part, quote, given) and says_what_is_asked(part, quote, citation.title) \
                and mentions_own_names(part, question, quote):
            extra = check(f"{quote.rstrip('.')} [{citation.n}].", question)
            if not extra.declined:
                return extra
    return None


# "what is it called" -> "what it is called": a pronoun subject goes before its verb in a statement.
_INVERTED = re.compile(r"^(?P<asked>.*?)\s+(?P<verb>is|was|are|were)\s+(?P<subject>it|they|he|she|this|that|these|those)\b", re.I)


def _not_said(part: str) -> str:
    asked = part.rstrip("?").strip()
    asked = _INVERTED.sub(r"\g<asked> \g<subject> \g<verb>", asked, count=1)
    return f"The passages do not say {asked[:1].lower()}{asked[1:]}."


def _silent(pieces: Generator[str, None, CheckedAnswer | None]) -> Generator[str, None, CheckedAnswer | None]:
    """Run a generator of streamed text without passing its text on; return what it returns."""
    while True:
        try:
            next(pieces)
        except StopIteration as done:
            return done.value
    yield  # pragma: no cover - makes this a generator, so `yield from` can call it
