"""Retrieval: question -> ranked `Hit`s, fusing dense (meaning) and BM25 (exact words) rankings.

Dense search finds paraphrases ("which fund paid back Pakistan's army"); BM25 finds rare exact
tokens that a small embedder blurs (abbreviations like CSF, IMET, SOFA, numbers). Reciprocal rank
fusion combines the two rankings without having to calibrate their very different score scales.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from itertools import zip_longest

from .chunking import searchable_text
from .embedding import Embedder
from .errors import InvalidInputError
from .lexical import at_sentence_start, code_names, is_everyday_word, names_in, number_value, terms_in, tokenize, words
from .relevance import QUESTION_START, off_subject, publication, role_missing
from .schema import Hit
from .settings import Settings

MAX_QUESTION_CHARS = 2000
# Two or more capitalised words in a row, not counting a leading "The": a name ("Red Book").
_NAME_RUN = re.compile(r"(?<!\w)(?!The\b)[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)+")
# Front matter (author lists) and bibliographies stay findable but rank below content that matches
# as well: a fused score is multiplied by this weight.
KIND_WEIGHTS = {"content": 1.0, "front_matter": 0.7, "references": 0.7}
NEAR_DUPLICATE = 0.8  # share of a passage's words already shown by a better hit
# A question that names a document ("according to the op-ed", "in the review paper") prefers
# that document's passages: their fused score is multiplied by this.
NAMED_DOCUMENT_BOOST = 1.3
# How people name a document: by its kind ("the op-ed", "the review paper") or its publisher. Title
# words are left out: they are topic words ("security", "strategic") that questions use anyway.
_METADATA_FIELDS = ("kind", "publisher")
# "Besides military aid, what else ...": the excluded part names what the asker already knows.
# Searched for, it ranks the passages about it first, and a small model then answers with exactly
# what was excluded (measured on d04 of the seeds questions), so search leaves it out.
_EXCLUSION = re.compile(r"^(?:besides|apart from|aside from|other than|except for|in addition to)\b[^,?]{1,80},\s*(?P<rest>.+)$", re.I)


def distinctive_metadata_words(document_metadata: dict[str, dict]) -> dict[str, set[str]]:
    """Per document, the words of its kind and publisher that no other document shares."""
    words = {
        source: {w for w in tokenize(" ".join(str(meta.get(f, "")) for f in _METADATA_FIELDS)) if len(w) > 2 and not w[0].isdigit()}
        for source, meta in document_metadata.items()
    }
    # Counted once over all documents: the union of the others' words for each document took 8 s
    # of every cold start on 10,000 documents.
    documents_with = Counter(w for own in words.values() for w in own)
    return {source: {w for w in own if documents_with[w] == 1} for source, own in words.items()}


# Terminal escapes (colour codes pasted with a question, "\x1b[1m") and other control characters:
# their letters ("1m") became words of the question, and the citation check then found them in no
# passage and declined a correct answer. Escapes are removed; other control characters part words.
_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def validate_question(question: str) -> str:
    """The question, trimmed, without terminal escapes or control characters; a clear error for
    input no search could use."""
    if isinstance(question, str):
        try:
            question.encode("utf-8")
        except UnicodeEncodeError as exc:  # bytes that are not UTF-8, passed through by a terminal or file
            bad = question[exc.start]
            shown = f"the byte \\x{ord(bad) - 0xDC00:02x}" if "\udc80" <= bad <= "\udcff" else f"{bad!r}"
            raise InvalidInputError(f"the question is not valid UTF-8 text (it holds {shown}); "
                                    "retype it, or convert it to UTF-8") from None
        question = _CONTROL.sub(" ", _ESCAPE.sub("", question))
    if not isinstance(question, str) or not question.strip():
        raise InvalidInputError('the question is empty; type a question, e.g. "What is CSF?"')
    question = " ".join(question.split())
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInputError(f"the question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}. Ask a shorter question.")
    return question


def search_focus(question: str) -> str:
    """What to search for: the question without a leading exclusion ("Besides X, ...")."""
    match = _EXCLUSION.match(question)
    if match and len(tokenize(match.group("rest"))) >= 2:
        return match.group("rest")
    return question


# "Which operations does the op-ed name, and how many does the paper say ...?": a second question,
# also after a preposition (", and at which university was R first written?").
_SECOND_QUESTION = re.compile(rf",\s+and\s+(?={QUESTION_START})", re.I)


_FRAME_WORDS = {"year", "years", "date", "day", "month", "time", "place", "century", "decade"}


def search_parts(question: str) -> list[str]:
    """The questions a compound question asks, each searched for on its own; usually just one.
    Split only at ", and <wh-word>": relevance.question_parts splits more finely ("Where and on
    what date ...?"), to check that an answer answers each part, but such parts share their
    passages and are searched for together."""
    parts = [part.strip() for part in _SECOND_QUESTION.split(question)]
    # ", and in what year?" has nothing of its own to search for: it asks about the first part's
    # subject, which the whole question's passages are about.
    return parts if len(parts) > 1 and all(set(tokenize(part)) - _FRAME_WORDS for part in parts) else [question]


def _holds_phrase(text: str, phrase: str) -> bool:
    """Whether `text` holds `phrase`, allowing a typo ("Coalition Suport Fund"): some run of as
    many words is at least 85% alike, letter by letter."""
    import difflib

    target = phrase.lower().split()
    text_words = text.lower().split()
    joined = " ".join(target)
    if joined in " ".join(text_words):
        return True
    size = len(target)
    if any(difflib.SequenceMatcher(None, joined, " ".join(text_words[i:i + size])).ratio() >= 0.85
           for i in range(len(text_words) - size + 1)):
        return True
    return _holds_numbered_name(text, phrase)


def _holds_numbered_name(text: str, phrase: str) -> bool:
    """A name with a number in it, numbered another way ("Ninth Symphony" and "Symphony No. 9"):
    its number and its other words all within a few words of each other."""
    def normal(words_: list[str]) -> list[str]:
        return [w if value is None else str(value) for w in words_ for value in [number_value(w)]]

    target = normal(words(phrase))
    if not any(w.isdigit() for w in target):
        return False
    text_words = normal(words(text))
    window = len(target) + 2
    return any(set(target) <= set(text_words[i:i + window]) for i in range(len(text_words)))


def validate_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k > 50:
        raise InvalidInputError(f"k must be a whole number from 1 to 50, got {k!r}")
    return k


class Retriever:
    """Searches one open collection's store, and fuses, weighs and de-duplicates above it."""

    def __init__(self, store, embedder: Embedder, document_metadata: dict[str, dict], *,
                 candidates: int = Settings.candidates, rrf_k: int = Settings.rrf_k):
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k
        self._document_words = distinctive_metadata_words(document_metadata)
        # What the documents are (titles, publishers, authors) names things too: a question naming
        # a document's author is not about something the documents never mention.
        self._metadata_words = set(words(json.dumps(document_metadata, ensure_ascii=False)))
        self._metadata_text = " ".join(json.dumps(document_metadata, ensure_ascii=False).lower().split())
        self._publications = {source: publication(meta) for source, meta in document_metadata.items()}

    def named_documents(self, question: str) -> set[str]:
        """Sources whose distinctive metadata words appear in the question."""
        tokens = set(tokenize(question))
        return {source for source, own in self._document_words.items() if tokens & own}

    def unknown_names(self, question: str) -> list[str]:
        """Names in the question ("the Kerry-Lugar-Berman Act", "Australia") that no document
        mentions, allowing a typo ("Coalition Suport Fund"): the documents cannot answer about them.

        Every document is consulted (through the store's vocabulary), not only the passages
        retrieved, since documents often call one thing by several names ("Washington" for the
        United States); this check only catches what the documents never name at all."""
        unknown = []
        for name in sorted(names_in(question)):
            # Its parts as the lexical index holds them. The index's words are ASCII, so "Ramón"
            # is there as "ram" and "n" (wkf02, wkf11: "Ramón y Cajal", "García Márquez" were
            # declined as names no document mentions, with the article that names them ranked first).
            parts = words(name) if not name.isascii() else [part for part in re.split(r"[-']", name) if part] or [name]
            if name in self._metadata_words or self.store.knows_word(name) or all(self.store.knows_word(p) for p in parts):
                continue
            unknown.append(name)
        return unknown

    def unknown_phrases(self, question: str) -> list[str]:
        """Names of several capitalised words ("The Bluest Sky", "Red Book") that no passage and no
        document title holds as a phrase, though each word may occur: the documents do not name
        that thing, only things with some of its words."""
        unknown = []
        # "Toni Morrison's Beloved" names two things: split at a possessive.
        split = re.sub(r"['’]s\b", " ,", question)
        for match in _NAME_RUN.finditer(split):
            phrase = " ".join(match.group().split())
            # Any sentence's first word is capitalised: "... a similar spread. Which R function
            # ...?" names R, not a "Which R" (rmk08 was declined for it).
            if at_sentence_start(split, match.start()) or phrase.lower() in self._metadata_text:
                continue
            if not any(_holds_phrase(text, phrase) for text in self._texts_sharing_words(phrase)):
                unknown.append(phrase)
        return unknown

    def unknown_code_names(self, question: str) -> list[str]:
        """Names written as code ("data.table", "asyncio.TaskPool", "lru_cache") that no passage
        and no document title holds whole: their parts are everyday words ("data", "table") the
        other checks let pass, yet the documents never name that package or function (rmf20 was
        answered about read.csv for data.table's reader)."""
        unknown = []
        for name in code_names(question):
            if name.lower() in self._metadata_text:
                continue
            called = re.search(rf"(?<![\w.]){re.escape(name)}\(", question) is not None
            if not _holds_code_name(self._texts_sharing_words(name), name, called):
                unknown.append(name)
        return unknown

    def _texts_sharing_words(self, text: str) -> list[str]:
        """The searchable text of the 20 passages sharing most words with `text`: where a phrase or
        a name the documents hold would be."""
        found = self.store.lexical_search(tokenize(text), 20)
        return [searchable_text(c) for c in self.store.chunks([chunk_id for chunk_id, _ in found]).values()]

    def unknown_terms(self, question: str) -> list[str]:
        """Lower-case terms of the question ("orjson", "tidyverse") that are not everyday words
        and that no document uses: like an unknown name, a thing the documents never mention. An
        everyday word the documents lack is only a paraphrase, and is left alone. Needs an
        embedder that knows its vocabulary (the real one); without it, nothing is unknown."""
        vocabulary = getattr(self.embedder, "everyday_words", None)
        if not vocabulary:
            return []
        return [term for term in dict.fromkeys(terms_in(question))
                if not self.knows_word(term) and not is_everyday_word(term, vocabulary)]

    def knows_word(self, word: str) -> bool:
        """Whether the collection mentions this word anywhere (its text or what its documents are)."""
        return word in self._metadata_words or self.store.knows_word(word)

    def dense_ranking(self, question: str) -> list[tuple[str, float]]:
        return self.store.dense_search(self.embedder.embed([question])[0], self.candidates)

    def lexical_ranking(self, question: str) -> list[tuple[str, float]]:
        return self.store.lexical_search(tokenize(question), self.candidates)

    def search(self, question: str, k: int = 5) -> list[Hit]:
        question = validate_question(question)
        k = validate_k(k)
        parts = search_parts(search_focus(question))
        rankings = []
        for part in parts:
            named = self.named_documents(part) or self.named_documents(question)
            rankings.append(self.fitting_first(part, self.fuse(self.dense_ranking(part), self.lexical_ranking(part), k, named)))
        if len(rankings) == 1:
            return rankings[0]
        # Each part's best passages first, in turn: one search for the whole question ranks the
        # passages of its most prominent part on top and leaves the other part unanswerable.
        hits: list[Hit] = []
        for hit in (h for position in zip_longest(*rankings) for h in position if h is not None):
            if all(h.chunk_id != hit.chunk_id for h in hits) and len(hits) < k:
                hits.append(replace(hit, rank=len(hits) + 1))
        return hits

    def fitting_first(self, question: str, hits: list[Hit]) -> list[Hit]:
        """The hits an answer could come from first: the answer check rejects a sentence whose
        passage is about none of the things the question names, or never names the role asked
        ("Who wrote ...?" from a passage that says nothing of writing), so such a passage ranks
        after every one that could back an answer (measured in the README, "Grounding: when pakus
        declines", under "Verified means it answers this question")."""
        def fits(hit: Hit) -> bool:
            title, section = hit.title or "", hit.section or ""
            return not role_missing(question, hit.text, title, section) \
                and not off_subject(question, hit.text, title, section, self.knows_word, self._publications.get(hit.source, ""))
        ordered = sorted(hits, key=lambda hit: not fits(hit))  # stable: fused order within each group
        return [replace(hit, rank=rank) for rank, hit in enumerate(ordered, start=1)]

    def fuse(self, dense: Sequence[tuple[str, float]], lexical: Sequence[tuple[str, float]], k: int,
             named_documents: set[str] = frozenset()) -> list[Hit]:
        fused: dict[str, float] = {}
        details: dict[str, dict] = {}
        for name, ranking in (("dense", dense), ("lexical", lexical)):
            for rank, (chunk_id, score) in enumerate(ranking, start=1):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (self.rrf_k + rank)
                details.setdefault(chunk_id, {})[name] = (rank, score)
        chunks = self.store.chunks(list(fused))
        for chunk_id in list(fused):
            chunk = chunks.get(chunk_id)
            if chunk is None:  # removed between the search and this read
                del fused[chunk_id]
                continue
            fused[chunk_id] *= KIND_WEIGHTS.get(chunk.kind, 1.0)
            if chunk.source in named_documents:
                fused[chunk_id] *= NAMED_DOCUMENT_BOOST
        # Ties (ranks 1 and 2 in one list, 2 and 1 in the other) go to the earlier passage, by
        # source and position: deterministic, whatever order the store keeps its chunks in.
        ordered = sorted(fused, key=lambda i: (-fused[i], chunks[i].source, chunks[i].start, i))

        hits: list[Hit] = []
        shown: list[set[str]] = []
        for chunk_id in ordered:
            chunk = chunks[chunk_id]
            chunk_words = set(tokenize(searchable_text(chunk)))
            if chunk_words and any(len(chunk_words & other) / len(chunk_words) >= NEAR_DUPLICATE for other in shown):
                continue  # says nothing a better hit has not already said
            dense_rank, dense_score = details[chunk_id].get("dense", (None, None))
            lexical_rank, lexical_score = details[chunk_id].get("lexical", (None, None))
            hits.append(Hit(rank=len(hits) + 1, chunk=chunk, score=fused[chunk_id], dense_score=dense_score,
                            lexical_score=lexical_score, dense_rank=dense_rank, lexical_rank=lexical_rank))
            shown.append(chunk_words)
            if len(hits) == k:
                break
        return hits


def _holds_code_name(texts: list[str], name: str, called: bool = False) -> bool:
    """Whether a passage holds a name written as code: whole, or a dotted name in parts. Documents
    list a method under its class ("has_header(sample)" beside "csv.Sniffer()"), so
    "csv.Sniffer.has_header" is nowhere whole (pyj01 was declined with its answer ranked first).
    In parts only when the last part is itself written as code ("has_header"), or the question
    `called` it ("csv.DictWriter.writerow()", pyk14: a method, not a word): for "data.table" every
    passage about tables of data holds both words."""
    *parents, last = name.split(".")
    in_parts = bool(parents) and (called or code_names(last) == [last])
    return any(_holds_word(text, name)
               or (in_parts and _holds_word(text, last) and all(_holds_word(text, p) for p in parents))
               for text in texts)


def _holds_word(text: str, word: str) -> bool:
    """Whether `text` holds `word` whole, in any case ("sys.argv" not inside "sys.argvx")."""
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.I) is not None
