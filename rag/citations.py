"""Citations: generated text + the passages the model saw -> checked sentences and `Citation`s.

The model is asked to cite, but a small model cites loosely and sometimes adds what no passage says,
so the answer is checked in code, sentence by sentence:
- `[n]` markers that name no passage are dropped; a sentence with no marker is attributed to the
  passage that supports it best, if any does;
- a sentence is supported only if every number and name in it appears in the passages it cites and
  most of its content words do too (words of the question count, since restating it adds no claim);
- unsupported sentences are removed from the answer and reported, never shown as if backed.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from .acronyms import expand_acronyms, initialisms
from .chunking import split_sentences
from .declines import declines, says_not_found
from .lexical import FILLER_STEMS, code_names, mentioned, names_in, spelled_numbers, stems, tokenize
from .lexical import words as lexical_words
from .markers import MARKER, best_sentence, numbers_in, strip_markers  # noqa: F401 (strip_markers: for callers)
from .moved_numbers import moved_number
from .relevance import (answers_part, asked_sentence, off_subject, publication, qualifier_mismatch, question_parts, refers_back,
                        role_missing, wrong_end_of_span)
from .schema import Citation, Document, Hit
from .sentences import LEADER_DOTS, SECTION_NUMBER, label_key, says_what_is_asked, sentence_spans
from .stand_ins import extract_best, extract_for_markers, marker_subjects, pointer_quote

MIN_WORD_SUPPORT = 0.6  # share of a sentence's content words that its passages must contain


@dataclass
class CheckedSentence:
    text: str  # without markers
    cited: list[int]  # passage numbers, 1-based
    supported: bool
    score: float
    missing: list[str] = field(default_factory=list)  # numbers/names no cited passage contains
    removed: str = ""  # an unsupported ending cut from the sentence the model wrote


@dataclass
class CheckedAnswer:
    text: str  # the answer to show: supported sentences with their markers
    sentences: list[CheckedSentence]
    citations: list[Citation]
    unsupported: list[str]
    declined: bool


def _support(sentence: str, passages: list[str], question: str, labels: list[str] = ()) -> tuple[float, list[str]]:
    """Score in 0..1 of how much of `sentence` the passages state, and the facts they lack.
    `labels`: the passages' document titles and sections, which may hold the names and numbers
    of what the passages are about ("The R FAQ thanks ..." from a passage of the R FAQ that never
    repeats its name; "Python 3.11 ..." from "What's New In Python 3.11")."""
    evidence = " ".join(passages)
    named = " ".join([evidence, *labels])
    named_lower = named.lower()
    # A number the passage writes as a word ("three-eighths") states the answer's digits ("3/8").
    evidence_words = stems(evidence) | spelled_numbers(evidence)
    # A number the passage's section states is backed as a word too: "waits 5 seconds" from a
    # passage under the heading "sqlite3.connect(database, timeout=5.0, ...)" (pyf03).
    evidence_words |= numbers_in(" ".join(labels))
    # An ordinal ("the 1st", "19th") may be written "first" in the passage; an amount may not.
    ordinals = set(re.findall(r"\b(\d+)(?:st|nd|rd|th)\b", sentence))
    backed = numbers_in(named) | spelled_numbers(named, amounts_only=True)
    missing = sorted(n for n in numbers_in(sentence) if n not in backed and not (n in ordinals and n in spelled_numbers(named)))
    # Names count even when the question used them: "The Kerry-Lugar-Berman Act provided ..." is
    # a claim about something no passage mentions, however the question was worded.
    abbreviations = initialisms(named)
    missing += sorted(n for n in names_in(sentence) if not mentioned(n, named_lower) and n not in abbreviations)
    # A name the passage's title or section holds is backed as a word too: "Kafka" from a passage
    # of the "Franz Kafka" article that only says "Kafkaesque" and "his works".
    label_words = set(lexical_words(" ".join(labels)))
    evidence_words |= stems(" ".join(w for w in re.findall(r"\b[A-Z][\w'’-]*", sentence) if w.lower() in label_words))
    words = stems(sentence) - stems(question) - FILLER_STEMS
    if not words:  # the sentence only restates the question
        return (0.0 if missing else 1.0), missing
    covered = len(words & evidence_words) / len(words)
    return covered, missing


def _parse(text: str, passage_count: int) -> list[tuple[str, list[int]]]:
    """Sentences of the answer with the valid passage numbers each one cites."""
    result = []
    for start, end in split_sentences(text.strip()):
        raw = text.strip()[start:end]
        cited: list[int] = []
        for match in MARKER.finditer(raw):
            for number in re.split(r"\s*[,;]\s*", match.group(1)):
                n = int(number)
                if 1 <= n <= passage_count and n not in cited:
                    cited.append(n)
        sentence = MARKER.sub("", raw).strip()
        if re.fullmatch(r"[\W_]*", sentence):
            # A sentence of markers only ("[1]."): they belong to the sentence before it.
            if result:
                result[-1][1].extend(n for n in cited if n not in result[-1][1])
            continue
        result.append((sentence, cited))
    return result


# A sentence ending in a word or an operator that needs something after it.
_CUT_OFF = re.compile(r"(?:&&|\|\||[=+<>(,]|\b(?:and|or|the|a|an|of|with|than))$", re.I)


def _source_span(hit: Hit, start: int, end: int, documents: Mapping[str, Document]) -> tuple[int | None, int, int]:
    """Map a span of a chunk's text to (page, start, end) in the source file: for a paged format
    (PDF) the span is within that page's text, otherwise page is None."""
    document = documents.get(hit.source)
    whole_chunk = (hit.page, hit.start - hit.chunk.page_start, hit.end - hit.chunk.page_start) if hit.page else (None, hit.start, hit.end)
    if document is None:
        return whole_chunk
    clean_start = bisect.bisect_right(document.offsets, hit.start) - 1  # the kept character at hit.start
    if document.text[clean_start:clean_start + len(hit.text)] != hit.text:
        return whole_chunk  # the document changed since indexing; fall back to the chunk
    return document.page_span(*document.original_span(clean_start + start, clean_start + end))


def _best_supporting_passage(sentence: str, passages: list[str], question: str, labels: list[str]) -> int | None:
    """Number of the passage that supports `sentence` best, if one supports it at all."""
    scored = [(_support(sentence, [p], question, [label]), n) for n, (p, label) in enumerate(zip(passages, labels), start=1)]
    supporting = [(score, n) for (score, missing), n in scored if score >= MIN_WORD_SUPPORT and not missing]
    return max(supporting, key=lambda item: (item[0], -item[1]))[1] if supporting else None


def _attribute(sentence: str, cited: list[int], passages: list[str], question: str, labels: list[str]) -> CheckedSentence:
    """Check `sentence` against the passages it cites; if they do not back it (or it cites none),
    attribute it to the one passage that does, if any: small models often cite [1] for everything."""
    score, missing = _support(sentence, [passages[n - 1] for n in cited], question, [labels[n - 1] for n in cited]) if cited else (0.0, [])
    if not cited or score < MIN_WORD_SUPPORT or missing:
        best = _best_supporting_passage(sentence, passages, question, labels)
        if best is not None:
            cited = [best]
            score, missing = _support(sentence, [passages[best - 1]], question, [labels[best - 1]])
    supported = bool(cited) and score >= MIN_WORD_SUPPORT and not missing
    return CheckedSentence(sentence, cited, supported, score, missing)


# "..., and R itself was first written at the University of Auckland": a clause with a subject of
# its own, after a conjunction. "which ..." and "who ..." clauses lean on what came before.
_SECOND_CLAUSE = re.compile(r"^(?:and|but|while|whereas)\s+(?!which\b|who\b|whose\b|that\b)(?P<clause>\S.*)$", re.I)


def _second_clause(result: CheckedSentence, passages: list[str], question: str, labels: list[str]) -> CheckedSentence | None:
    """The clause cut from a backed sentence, as a sentence of its own, when another passage backs
    it: small models join facts from two passages into one sentence with one marker ("The notes
    were written at the University of Adelaide [2], and R itself ... at the University of
    Auckland"), and the check kept only the part its passage backs."""
    match = _SECOND_CLAUSE.match(result.removed) if result.supported else None
    if not match or len(match.group("clause").split()) < 4:
        return None
    clause = match.group("clause")
    rest = _attribute(clause[0].upper() + clause[1:], [], passages, question, labels)
    return rest if rest.supported else None


_CLAUSE_END = re.compile(r"[,;:](?=\s)|\s[—–-](?=\s)")
# Where a phrase of place, source or means begins: "use read.fwf from the readr package" ends in a
# phrase the small model adds from its own knowledge (rm09), after a backed statement.
_PHRASE_START = re.compile(r"\s(?=(?:from|in|at|by|with|via|using|on)\s)", re.I)


def _supported_prefix(sentence: str, cited: list[int], passages: list[str], question: str, labels: list[str]) -> CheckedSentence | None:
    """The longest part of `sentence` up to a clause boundary (else before a phrase of place,
    source or means) that its passages back, that says more than the question and still gives the
    kind of thing one of its parts asks, with the cut ending in `removed`; None when there is no such part."""
    # Clause boundaries first: a cut inside a clause can leave it dangling ("..., and R was first
    # written"), so a phrase is cut only when no whole clause stands.
    clause_cuts = [m.start() for m in _CLAUSE_END.finditer(sentence)]
    phrase_cuts = [m.start() for m in _PHRASE_START.finditer(sentence)]
    parts = question_parts(question)
    for cut in [*reversed(clause_cuts), *reversed(phrase_cuts)]:
        prefix = sentence[:cut].rstrip()
        if len(tokenize(prefix)) < 3 or _adds_nothing(prefix, question) \
                or not any(answers_part(part, prefix, question) for part in parts):
            continue
        result = _attribute(prefix, cited, passages, question, labels)
        if result.supported:
            result.removed = sentence[cut:].strip(" ,;:—–-")
            return result
    return None


_YES_NO = re.compile(r"^(is|are|was|were|do|does|did|can|could|has|have|had|will|would|should)\b", re.I)


def _adds_nothing(sentence: str, question: str) -> bool:
    """The sentence only restates the question ("The paper said the efforts yielded rudimentary
    results."), so it answers nothing. For a yes/no question the restatement is the answer."""
    # A name written as code is new though its words are the question's: "bug.report()" answers
    # "Which function generates a bug report?" (rmf04).
    new_code = {name.lower() for name in code_names(sentence)} - {name.lower() for name in code_names(question)}
    return not _YES_NO.match(question.strip()) and not (stems(sentence) - stems(question) - FILLER_STEMS) and not new_code


_ASKS_FOR_A_NAME = re.compile(r"\b(?:title[sd]?|called|named|headings?|sections?|chapters?)\b", re.I)


def _is_label(sentence: str, hits: list[Hit], question: str) -> bool:
    """Whether the sentence is only a numbered section heading of a passage ("2.2 Fixed-width-format
    files") or a contents line: it says where the answer is, unless the question asks for a title
    or a heading. An unnumbered heading or a title may be the answer itself: an article titled
    "Claude Shannon" answers "Who is the originator of information theory?"."""
    if _ASKS_FOR_A_NAME.search(question):
        return False
    if LEADER_DOTS.search(sentence):
        return True
    numbered = {label_key(hit.section) for hit in hits if hit.section and SECTION_NUMBER.match(hit.section.strip())}
    return bool(SECTION_NUMBER.match(sentence.strip())) and label_key(sentence) in numbered


def _with_markers(sentence: CheckedSentence) -> str:
    """'The fund paid [1][2].': markers go before the closing punctuation. A quoted passage's own
    footnote marks ("JavaScript [1] )") are dropped: they would read as pakus's citations."""
    text = re.sub(r"\s+([)\].,;:])", r"\1", " ".join(strip_markers(sentence.text).split()))
    end = text[-1] if text[-1:] in ".!?" else "."
    body = text[:-1].rstrip() if text[-1:] in ".!?" else text
    return f"{body} {''.join(f'[{n}]' for n in sentence.cited)}{end}"


# An answer of this many words at most is bare: a name, a number, a term.
BARE_ANSWER_WORDS = 4


def _bare_answer_said(answer: str, hit: Hit, question: str) -> bool:
    """Whether a passage sentence holding the bare answer's words says something of what is asked
    (any of them: the title line "Arcturus" holds the name too, the sentence after it says "the
    brightest star in the northern ...")."""
    wanted = stems(answer)
    holding = [hit.text[a:b] for a, b in sentence_spans(hit.text) if wanted <= stems(hit.text[a:b])]
    if not holding:  # backed by the title ("Kafka" for "Kafkaesque") or in other words: the closest
        start, end = best_sentence(hit.text, answer)
        holding = [hit.text[start:end]]
    return any(says_what_is_asked(question, sentence, hit.title) for sentence in holding)


def _check_relevance(sentence: CheckedSentence, hits: list[Hit], question: str, documents: Mapping[str, Document],
                     known: Callable[[str], bool] | None) -> None:
    """Unsupport a backed sentence whose passages are about another subject than the question
    names, state the opposite end of what it asks (began for finished), or never name the role
    asked for ("Who is the editor ...?"): see relevance.py."""
    for n in sentence.cited:
        hit = hits[n - 1]
        moved = moved_number(sentence.text, hit.text, question)
        if moved:
            sentence.supported = False
            sentence.missing.append(f"the passage gives {moved} for another statement")
            return
        start, end = best_sentence(hit.text, sentence.text)
        wrong_end = qualifier_mismatch(question, hit.text[start:end]) or wrong_end_of_span(question, hit.text[start:end], sentence.text)
        if wrong_end:
            sentence.supported = False
            sentence.missing.append(f"the passage does not say '{wrong_end}'")
            return
        # A bare answer ("PEP 673") is only as good as the passage sentence holding it: "See PEP 673
        # for more details." says nothing of the f-strings asked about (pyk19, unanswerable).
        if len(sentence.text.split()) <= BARE_ANSWER_WORDS and not _bare_answer_said(sentence.text, hit, question):
            sentence.supported = False
            sentence.missing.append("the passage sentence holding it says nothing of what is asked")
            return
        # Each part of a compound question asks its own role: "Who wrote the draft, and who are the
        # authors of ...?" is answered for the authors by a passage that never says "wrote".
        roles = [role_missing(part, hit.text, hit.title or "", hit.section or "") for part in question_parts(question)]
        if all(roles):
            sentence.supported = False
            sentence.missing.append(f"the passage does not say {roles[0]}")
            return
        # So does each part its own subject: the part about csv's newline argument is answered by a
        # passage that never names the other part's UTF-8 (pyf13). A part that refers back ("and
        # when did it open?") is about what the whole question names.
        parts = [question if refers_back(part) else part for part in question_parts(question)]
        document = documents.get(hit.source)
        published_in = publication(document.metadata) if document else ""
        off = [off_subject(part, hit.text, hit.title, hit.section, known, published_in) for part in parts] if known else [[]]
        names = off[0] if all(off) else []
        if names:
            sentence.supported = False
            sentence.missing.append(f"the passage is not about {', '.join(names)}")
            return


def _said_once(sentences: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    """The sentences without repeats: a small model can loop, writing one sentence again and again
    (wkg15: "In 1728, Vitus Bering first systematically explored the Bering Sea [1]." five times)."""
    seen: set[str] = set()
    once = []
    for sentence, cited in sentences:
        key = " ".join(sentence.lower().split())
        if key not in seen:
            seen.add(key)
            once.append((sentence, cited))
    return once


def check_answer(text: str, hits: list[Hit], question: str, documents: Mapping[str, Document],
                 known: Callable[[str], bool] | None = None) -> CheckedAnswer:
    """Parse, attribute and verify the generated `text` against the passages `hits` (numbered from
    1). `known(name)` says whether the collection mentions a name, for the subject check."""
    if declines(text, question):
        return CheckedAnswer("", [], [], [], declined=True)
    passages = [h.text for h in hits]
    labels = [f"{h.title or ''}\n{h.section or ''}" for h in hits]
    sentences = _parse(text, len(hits))
    if not sentences:
        sentences = extract_for_markers(text, hits, question)
    elif all(_adds_nothing(sentence, question) for sentence, _ in sentences):
        sentences = extract_best(hits, question)
    pointers = marker_subjects(text)
    sentences = _said_once(sentences)
    checked: list[CheckedSentence] = []
    for sentence, cited in sentences:
        result = _attribute(sentence, cited, passages, question, labels)
        if not result.supported:
            # Small models often end a backed statement with an unbacked flourish (", which leads
            # to ..."): keep the longest backed part and report the rest as removed.
            result = _supported_prefix(sentence, cited, passages, question, labels) or result
        elif sentence in pointers:
            result = replace(result, text=pointer_quote(passages[result.cited[0] - 1], result.text))
        checked.append(result)
        rest = _second_clause(result, passages, question, labels)
        if rest is not None:
            result.removed = ""
            checked.append(rest)

    for sentence in checked:
        if sentence.supported and _is_label(sentence.text, hits, question):
            sentence.supported = False
            sentence.missing.append("a heading says where the answer is, not what it is")
        if sentence.supported and sentence.text.rstrip(" .").endswith(":"):
            # "The Unicode standard contains tables listing characters and code points:" copied
            # from a passage (pyh04): it announces what follows and states nothing itself.
            sentence.supported = False
            sentence.missing.append("it introduces what follows, and says nothing itself")
        if sentence.supported and _CUT_OFF.search(sentence.text.rstrip(" .")):
            # "... this macro can be used: #if PY_VERSION_HEX < 0x030900A4 &&" (py29): a statement
            # cut off where it continues, taken from a passage that ends mid-code.
            sentence.supported = False
            sentence.missing.append("it stops in the middle of what it says")
        if sentence.supported:
            _check_relevance(sentence, hits, question, documents, known)
    shown = [s for s in checked if s.supported]
    if shown and all(says_not_found(s.text) for s in shown):
        # What is left once the unbacked sentences are removed only says the passages lack the
        # answer (py26 on another CPU: "... is not explicitly stated in the given passages. The
        # passage about creating a ... database does not provide information about ..."): a decline.
        return CheckedAnswer("", checked, [], [s.text for s in checked], declined=True)
    cited_text = " ".join(passages[n - 1] for s in shown for n in s.cited)
    # The cited documents' titles and sections count: "in Python 3.11" is answered by "What's New
    # In Python 3.11", whose passages need not repeat the version.
    cited_context = " ".join([cited_text, *(labels[n - 1] for s in shown for n in s.cited)])
    cited_numbers = numbers_in(cited_context) | spelled_numbers(cited_context)
    if shown and all(numbers_in(strip_markers(asked_sentence(part))) - cited_numbers for part in question_parts(question)):
        # The question asks about a year or figure ("GDP in 2020") that no cited passage mentions:
        # whatever the model wrote, it is not an answer from these passages. Of a compound question
        # one part is enough ("What encoding ..., and which version ... in Python 3.11?" answered
        # for the encoding); the other is the part check's to ask again for. What the asker saw
        # before asking ("... and got 0 back. How should I ...?") is no figure asked about (rmk07).
        return CheckedAnswer("", checked, [], [s.text for s in checked], declined=True)
    answer_text = expand_acronyms(" ".join(_with_markers(s) for s in shown), cited_text)

    citations: list[Citation] = []
    for n in sorted({n for s in shown for n in s.cited}):
        hit = hits[n - 1]
        citing = [s for s in shown if n in s.cited]
        pair_scores = [_support(s.text, [hit.text], question, [labels[n - 1]]) for s in citing]
        best = max(range(len(citing)), key=lambda i: pair_scores[i][0])
        quote_start, quote_end = best_sentence(hit.text, citing[best].text)
        page, start, end = _source_span(hit, quote_start, quote_end, documents)
        citations.append(Citation(
            n=n,
            source=hit.source,
            title=hit.title,
            section=hit.section,
            start=start,
            end=end,
            quote=hit.text[quote_start:quote_end],
            supported=any(score >= MIN_WORD_SUPPORT and not missing for score, missing in pair_scores),
            score=round(max(score for score, _ in pair_scores), 3),
            chunk_id=hit.chunk_id,
            passage=hit.text,
            page=page,
        ))
    return CheckedAnswer(
        text=answer_text,
        sentences=checked,
        citations=citations,
        unsupported=[s.text for s in checked if not s.supported] + [s.removed for s in checked if s.removed],
        declined=not shown,
    )


def merge_answers(first: CheckedAnswer, second: CheckedAnswer) -> CheckedAnswer:
    """One answer from two checked answers over the same numbered passages (a compound
    question's parts): texts joined, citations of the same passage kept once."""
    numbers = {c.n for c in first.citations}
    return CheckedAnswer(
        text=f"{first.text} {second.text}".strip(),
        sentences=first.sentences + second.sentences,
        citations=sorted(first.citations + [c for c in second.citations if c.n not in numbers], key=lambda c: c.n),
        unsupported=first.unsupported + second.unsupported,
        declined=first.declined and second.declined,
    )
