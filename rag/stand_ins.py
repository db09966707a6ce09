"""Passage sentences that stand in for a reply that points instead of answering: markers alone
("[2]"), a marker as the subject ("[1] specifies JSON"), or words that say nothing. Each stand-in
is quoted verbatim, so nothing is claimed that the passage does not say, and is then checked by
citations.check_answer like any sentence the model wrote."""

from __future__ import annotations

import re

from .chunking import split_sentences
from .lexical import stems, tokenize
from .markers import MARKER, best_sentence, markers_only
from .relevance import answers_part, question_parts, thing_asked
from .schema import Hit
from .sentences import best_matching_sentence, says_what_is_asked, sentence_spans, with_context

MIN_FOCUS_OVERLAP = 2  # question words a passage sentence must share to stand in for an empty answer

# "[1] specifies JSON, and [4] obsoletes RFC 4627.": a marker standing as the subject of its
# sentence, followed by the verb. The model points at the passage instead of naming the thing.
_MARKER_SUBJECT = re.compile(r"^\s*\[\d+(?:\s*[,;]\s*\d+)*\]\s+[a-z]")


def marker_subjects(text: str) -> set[str]:
    """The answer's sentences (without markers) whose subject is a citation marker."""
    text = text.strip()
    return {MARKER.sub("", text[start:end]).strip() for start, end in split_sentences(text)
            if _MARKER_SUBJECT.match(text[start:end])}


def pointer_quote(passage: str, sentence: str) -> str:
    """The sentence of `passage` that a backed sentence whose subject was a marker draws on,
    verbatim: "specifies JSON, and obsoletes RFC 4627" lacks what does, and "JSON, specified by
    RFC 7159 (which obsoletes RFC 4627) ..." says it."""
    start, end = with_context(passage, *best_sentence(passage, sentence))
    return passage[start:end].strip()


def focus(question: str, hit: Hit) -> set[str]:
    """The question's words, less those naming the passage's document ("... the strategic
    partnership review paper"): they say which document, not what is asked, and would make a title
    line match best."""
    return set(tokenize(question)) - set(tokenize(hit.title))


def extract_for_markers(text: str, hits: list[Hit], question: str) -> list[tuple[str, list[int]]]:
    """When the model answered with markers alone ("[2]"), answer with the passage sentence that
    best matches the question (holding the kind of thing asked, then sharing most of its words):
    verbatim, so nothing is claimed that it does not say. The marker
    says an answer is there; which passage it names is less sure than the words (py17: "[2]" for
    the rule, where passage 1 held its exception, asked about), so every passage is looked at and
    the cited one wins a tie. A compound question's parts each have their own passages, and the
    whole question's words would draw every part's quote to the first part's passage (py15): there
    the marker's choice stands."""
    numbers = [int(n) for match in MARKER.finditer(text) for n in re.split(r"\s*[,;]\s*", match.group(1))]
    numbers = [n for n in numbers if 1 <= n <= len(hits)]
    if not numbers or not markers_only(text):
        return []
    best, thing = None, stems(thing_asked(question))
    others = [m for m in range(1, len(hits) + 1) if m != numbers[0]] if len(question_parts(question)) == 1 else []
    for n in [numbers[0], *others]:
        hit, words = hits[n - 1], focus(question, hits[n - 1])
        # A sentence holding the kind of thing asked comes first: for "Which function ...?", "A bug
        # report can be generated using the function bug.report()" before the sentence sharing
        # more words, "check whether the bug is with R, or a contributed package" (rmf04).
        for start, end in sentence_spans(hit.text):
            sentence = hit.text[start:end]
            score = (answers_part(question, sentence, question), bool(thing & stems(sentence)), len(words & set(tokenize(sentence))))
            if best is None or score > best[0]:
                best = (score, n, with_context(hit.text, start, end))
    _, n, (start, end) = best
    hit = hits[n - 1]
    if not says_what_is_asked(question, hit.text[start:end], hit.title):
        return []
    return [(hit.text[start:end], [n])]


def _token_set(text: str) -> set[str]:
    return set(tokenize(text))


def extract_best(hits: list[Hit], question: str) -> list[tuple[str, list[int]]]:
    """The passage sentence sharing most words with the question (at least MIN_FOCUS_OVERLAP),
    verbatim, in place of an answer that said nothing; none when no sentence matches that well."""
    found = best_matching_sentence(hits, question, _token_set, lambda overlap, _: overlap >= MIN_FOCUS_OVERLAP)
    return [(found[0], [found[1]])] if found else []
