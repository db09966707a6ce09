"""Citation markers and numbers in text, and the passage sentence an answer sentence rests on:
the small pieces that the citation check and the passage quotes that stand in for an answer share."""

from __future__ import annotations

import re

from .chunking import split_sentences
from .lexical import tokenize
from .sentences import sentence_spans

# "[0]" right after a name is code, not a citation: "sys.argv[0]" (pyf05's answer had lost its
# "[0]"). A marker follows a space, punctuation or another marker ("in 1990 [1].", "1990.[1]", "[1][2]").
MARKER = re.compile(r"\s*(?<![A-Za-z_])\[(\d+(?:\s*[,;]\s*\d+)*)\]")
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def strip_markers(text: str) -> str:
    """The text without its citation markers ("[1]", "[1, 2]")."""
    return MARKER.sub("", text)


def markers_only(text: str) -> bool:
    """Whether a reply is citation markers and nothing else ("[2]", "[1][2]."): it points at a
    passage instead of answering."""
    return bool(MARKER.search(text)) and not MARKER.sub("", text).strip(" .\n")


def first_sentence(reply: str) -> str:
    """The reply's first sentence with the markers that follow it ("... is __init__.py. [1]")."""
    spans = split_sentences(reply)
    if len(spans) < 2:
        return reply
    end = spans[0][1]
    markers = re.match(rf"(?:{MARKER.pattern})+", reply[end:])
    return reply[:end] + (markers.group() if markers else "")


def numbers_in(text: str) -> set[str]:
    # "5.0" is the number 5: "waits 5 seconds" is what "timeout=5.0" says (pyf03).
    return {re.sub(r"\.0+$", "", n.replace(",", "").rstrip(".")) for n in NUMBER.findall(text)}


def best_sentence(passage: str, sentence: str) -> tuple[int, int]:
    """Span within `passage` of its sentence that shares most of the numbers of `sentence`, then
    most of its words: the number is the fact ("... launched in 2022" is stated by "The SSD,
    revived in 2022, ...", not by the sentence that names the dialogue in full)."""
    target, numbers = set(tokenize(sentence)), numbers_in(sentence)
    return max(sentence_spans(passage), key=lambda span: (len(numbers & numbers_in(passage[span[0]:span[1]])),
                                                          len(target & set(tokenize(passage[span[0]:span[1]]))), -span[0]))
