"""Replies that decline: what the model writes when the passages do not answer, in any words.

The model is told to reply NOT_IN_PASSAGES, and mostly does; it also declines in sentences ("The
passages do not mention the summit."), with a marker on them ("The passage about creating a
database does not provide information about the maximum size ... [2]"), or with a bare number.
`check_answer` treats each as a decline, so that the bot asks again or says it cannot answer.
"""

from __future__ import annotations

import re

from .chunking import split_sentences
from .markers import MARKER, numbers_in, strip_markers
from .prompts import NOT_FOUND

_DECLINE = re.compile(
    r"(passages?|documents?|text|context|sources?)\s+(do|does|did)\s+not\s+(contain|mention|say|provide|specify|state|include|answer)"
    r"|\bno (information|mention)\b|\bnot (mentioned|stated|specified|provided)\b|\bcannot (be )?(determine|answer|find)",
    re.I,
)
# A sentence saying that the passages (or one of them, "The passage about creating a database")
# lack the answer: with a marker, the model cites where it looked, which still answers nothing.
_SAYS_NOT_IN_PASSAGE = re.compile(
    r"\b(passages?|documents?|text|context|sources?)\b[^.\[]{0,80}?\b(do|does|did)\s+not\s+"
    r"(contain|mention|say|provide|specify|state|include|answer|give|discuss)", re.I)


def model_declined(text: str) -> bool:
    """The reply holds the decline marker (also written with spaces, in any case)."""
    return NOT_FOUND.lower() in text.lower() or NOT_FOUND.replace("_", " ").lower() in text.lower()


def declines(text: str, question: str) -> bool:
    """The reply as a whole declines: the marker, a decline in words without a citation, only
    sentences saying the passages lack the answer, or a bare number to a question not asking one."""
    return model_declined(text) or (_DECLINE.search(text) is not None and not MARKER.search(text)) \
        or _only_says_not_found(text) or _says_nothing(text, question)


def _only_says_not_found(text: str) -> bool:
    """Every sentence of the reply says the passages lack the answer (measured: py26's "The passage
    about creating a shared named in-memory database does not provide information about the maximum
    size of an SQLite database file [2]", which the check had marked verified)."""
    reply = strip_markers(text).strip()
    sentences = [reply[start:end] for start, end in split_sentences(reply) if reply[start:end].strip()]
    return bool(sentences) and all(says_not_found(s) for s in sentences)


def says_not_found(sentence: str) -> bool:
    """The sentence says the passages (or one of them) lack the answer."""
    return bool(_DECLINE.search(sentence) or _SAYS_NOT_IN_PASSAGE.search(sentence))


def _says_nothing(text: str, question: str) -> bool:
    """A reply of digits and punctuation only ("2": the number of a list item) to a question that
    does not ask for a number or a time says nothing; it is treated like a decline, and retried."""
    from .relevance import kind_asked

    words = re.findall(r"[^\W\d_]{2,}", strip_markers(text))
    return not words and bool(numbers_in(strip_markers(text))) and kind_asked(question) not in ("number", "time")
