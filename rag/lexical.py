"""Word tokens for the BM25 index: lower case, no stop words, plurals and possessives folded.

Kept deliberately simple and deterministic, so the same function serves indexing and querying and
abbreviations such as "CSF" or "IMET" survive as exact tokens.
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves according did does tell give say
    says said""".split()
)


def _fold(word: str) -> str:
    word = word.removesuffix("'s").removesuffix("’s")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    return [_fold(w) for w in _WORD.findall(text.lower().replace("’", "'")) if w not in STOP_WORDS]


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def stems(text: str) -> set[str]:
    """Word stems ("aimed" and "aim" -> "aim"): to compare a generated sentence with a passage
    that says the same thing in another form of the same words."""
    return set(_stemmer().stemWords(tokenize(text)))
