"""Passage sentences: where they are, and which of them can stand as an answer when pakus quotes
one instead of the model's words (citations.check_answer after a marker-only reply, and the
fallbacks of quoting.py after a decline)."""

from __future__ import annotations

import re

from .chunking import split_sentences
from .lexical import names_in, stems
from .relevance import answers_part, kind_asked
from .schema import Hit


def sentence_spans(passage: str) -> list[tuple[int, int]]:
    """Spans of the passage's sentences; paragraph breaks end a sentence too (a heading or a
    dateline has no full stop)."""
    spans = [span for block in re.finditer(r"[^\n]+", passage) for span in split_sentences(block.group(), block.start())]
    return spans or [(0, len(passage))]


_REFERRING = re.compile(r"(it|its|this|that|these|those|they|their|he|his|she|her|such)\b", re.I)


def with_referent(passage: str, start: int, end: int) -> tuple[int, int]:
    """A quoted sentence that opens by referring back ("It can be used to ...") is quoted with the
    sentence before it in its paragraph, which names what "it" is: alone, it answers nothing."""
    if not _REFERRING.match(passage[start:end]):
        return start, end
    before = [span for span in sentence_spans(passage) if span[1] <= start]
    if before and "\n" not in passage[before[-1][0]:start]:
        return before[-1][0], end
    return start, end


# A sentence that opens by taking up the case the one before it set ("In this case, the encoding
# declaration should be added as the second line"): the consequence, often the very answer.
_SEQUEL = re.compile(r"(?:in (?:this|that|such|either|both|these|those) cases?|if so|otherwise)\b", re.I)


def with_context(passage: str, start: int, end: int) -> tuple[int, int]:
    """A quoted sentence with what it needs to answer: the sentence before it when it refers back
    (`with_referent`), and the next sentence of its paragraph when that one takes up the case it
    sets ("One exception ... is when the file starts with a shebang line. In this case, ...")."""
    start, end = with_referent(passage, start, end)
    after = [span for span in sentence_spans(passage) if span[0] >= end]
    if after and "\n" not in passage[end:after[0][0]] and _SEQUEL.match(passage[after[0][0]:after[0][1]]):
        return start, after[0][1]
    return start, end


LEADER_DOTS = re.compile(r"(?:\.\s?){4,}")  # "Fixed-width files ........ 8": a table-of-contents line
SECTION_NUMBER = re.compile(r"^\d+(?:\.\d+)*\s+")


def label_key(text: str) -> str:
    return SECTION_NUMBER.sub("", " ".join(text.split()).strip(" .").lower())


# Question words that say what kind of answer is wanted, not what it is about.
_ANSWER_KIND_STEMS = stems("year date day time many much number name called")


def says_what_is_asked(question: str, sentence: str, title: str) -> bool:
    """Whether a passage sentence quoted as the answer shares something of the question beyond
    its names and its document's title: "In what year was Ingmar Bergman born?" is not answered
    by "The Seventh Seal is a 1957 film ... directed by Ingmar Bergman", which holds the names and
    a year but nothing of "born". True when the question asks about nothing but names, and for a
    "Who ...?" answered by a sentence naming someone else (a byline: "Jane Doe, John Roe")."""
    asked = stems(question) - stems(title or "") - stems(" ".join(names_in(question))) - _ANSWER_KIND_STEMS
    if not asked or asked & stems(sentence):
        return True
    return kind_asked(question) == "person" and answers_part(question, sentence, question)


def answer_spans(hit: Hit) -> list[tuple[int, int]]:
    """The passage's sentences that can stand as an answer: its section heading or document title
    ("2.2 Fixed-width-format files") and table-of-contents lines are labels of where an answer is,
    not answers, however many of the question's words they hold."""
    labels = {label_key(hit.section or ""), label_key(hit.title or "")} - {""}
    return [(start, end) for start, end in sentence_spans(hit.text)
            if label_key(hit.text[start:end]) not in labels and not LEADER_DOTS.search(hit.text[start:end])]


def best_matching_sentence(hits: list[Hit], question: str, words, qualifies) -> tuple[str, int] | None:
    """The passage sentence sharing most of the question's `words` (less those of the passage's
    document title, which say which document, not what is asked) among those `qualifies(overlap,
    focus size)` accepts, with its passage number; the earliest wins a tie."""
    best: tuple[int, int, str] | None = None
    for n, hit in enumerate(hits, start=1):
        focus = words(question) - words(hit.title)
        for start, end in answer_spans(hit):
            overlap = len(focus & words(hit.text[start:end]))
            if qualifies(overlap, len(focus)) and (best is None or overlap > best[0]) \
                    and says_what_is_asked(question, hit.text[start:end], hit.title):
                start, end = with_context(hit.text, start, end)
                best = (overlap, n, hit.text[start:end])
    return (best[2], best[1]) if best else None
