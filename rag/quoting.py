"""Answers quoted from the passages, for when the model declines although a passage answers: the
sentence that nearly restates the question (`quote_answer`), or the one the model was asked to
point at by copying it (`pointed_answer`). Both come back through `check_answer`, so a quote is
verified like any answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .citations import CheckedAnswer, check_answer, strip_markers
from .declines import model_declined
from .lexical import stems
from .relevance import answers_part
from .schema import Document, Hit
from .sentences import answer_spans, best_matching_sentence, says_what_is_asked, with_context

# When the model declines, a passage sentence holding this many of the question's word stems
# (less those of the document's title), and this share of them, is the answer, quoted. Measured by
# benchmarks/quote_threshold.py over the six question sets (149 answerable, 41 unanswerable,
# without the model): at >= 4 and 75%, 31 answerable questions had such a sentence holding the
# answer, and 1 unanswerable had one; at >= 2 and 75%, 43 and the same 1 (wk23, whose sentence
# names no one: the answer-type check of relevance.py rejects it); at 60%, 59 and 10.
QUOTE_MIN_STEMS = 2
QUOTE_MIN_SHARE = 0.75


def quote_answer(hits: list[Hit], question: str, documents: Mapping[str, Document],
                 known: Callable[[str], bool] | None = None) -> CheckedAnswer:
    """The passage sentence that nearly restates the question, as a checked answer citing it;
    declined when no sentence holds enough of the question's words."""
    found = best_matching_sentence(
        hits, question, stems, lambda overlap, focus: overlap >= QUOTE_MIN_STEMS and overlap >= QUOTE_MIN_SHARE * focus)
    if found is None:
        return CheckedAnswer("", [], [], [], declined=True)
    return check_answer(f"{found[0]} [{found[1]}]", hits, question, documents, known)


# A sentence the model points at after declining is quoted when it holds this many of the
# question's stems (less its document title's) and this share of them, and gives the kind of
# thing asked (relevance.answers_part). Lower than QUOTE_MIN_SHARE: the model, not word overlap
# alone, chose the sentence.
POINTED_MIN_STEMS = 2
POINTED_MIN_SHARE = 0.5


def pointed_answer(reply: str, hits: list[Hit], question: str, documents: Mapping[str, Document],
                   known: Callable[[str], bool] | None = None) -> CheckedAnswer:
    """The passage sentence the model copied in `reply`, as a checked answer citing it; declined
    when the copy is not found word for word in a passage or says too little of the question."""
    declined = CheckedAnswer("", [], [], [], declined=True)
    copied = " ".join(strip_markers(reply).split()).strip(" .\"'")
    if model_declined(reply) or len(copied) < 15:
        return declined
    for n, hit in enumerate(hits, start=1):
        for start, end in answer_spans(hit):
            sentence = hit.text[start:end]
            if copied.lower() not in " ".join(sentence.split()).lower():
                continue
            focus = stems(question) - stems(hit.title)
            overlap = len(focus & stems(sentence))
            if overlap < POINTED_MIN_STEMS or overlap < POINTED_MIN_SHARE * len(focus) or not answers_part(question, sentence, question) \
                    or not says_what_is_asked(question, sentence, hit.title):
                return declined
            start, end = with_context(hit.text, start, end)
            return check_answer(f"{hit.text[start:end]} [{n}]", hits, question, documents, known)
    return declined
