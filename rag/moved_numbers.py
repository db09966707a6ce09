"""Numbers taken from another statement: an answer sentence whose words are all in its passage
can still pair a number with the wrong claim, the year one explorer arrived given as the year of
another's conquest, or the year of one prize given to another. The citation check (citations.py)
unsupports such a sentence; the rules here find the number that moved.
"""

from __future__ import annotations

import re

from .lexical import FILLER_STEMS, names_in, stems
from .markers import NUMBER, numbers_in
from .sentences import sentence_spans


def moved_number(sentence: str, passage: str, question: str) -> str | None:
    """A number of `sentence` that the passage's sentence saying what `sentence` says does not
    give, when that passage sentence gives another number instead: the number was taken from
    another statement (wkh10: "began their conquest ... in 1524", where the passage says "in 1532,
    the Spanish began the conquest" and 1524 is the year another explorer reached the empire).
    A number the question gives is no claim of the answer ("Before R 4.2.0 made libcurl the
    default, which method ...?" answered "Before R 4.2.0 ... was wininet", rmf13)."""
    numbers = numbers_in(sentence) - numbers_in(question)
    if not numbers:
        return None
    giving = [passage[a:b] for a, b in sentence_spans(passage) if numbers & numbers_in(passage[a:b])]
    others = [number_of_another_name(sentence, given) for given in giving]
    if giving and all(others):
        return others[0]
    target = stems(NUMBER.sub(" ", sentence)) - FILLER_STEMS
    if len(target) < 3:
        return None
    overlaps = [(len(target & stems(passage[a:b])), a, b) for a, b in sentence_spans(passage)]
    best = max(overlap for overlap, _, _ in overlaps)
    enough = max(3, len(target) // 2)
    if best < enough:
        return None  # no passage sentence says the same: nothing to compare the number with
    # A sentence giving the number that says enough of the same is the statement it rests on, though
    # another says more of the question's words: "The default limit is 4300 digits in string form."
    # after "Converting between int and str in bases other than 2, 4, 8 ... raises a ValueError if
    # the number of digits is above a limit" (py03).
    # It must give all the answer's numbers: "began ... in 1524 and by 1572 ..." is not backed by the
    # sentence giving only 1572 (wkh10).
    if any(numbers <= numbers_in(given) and len(target & stems(given)) >= enough for given in giving):
        return None
    # Several sentences may share as many words with it (wk16: "The Aswan High Dam was built
    # between 1960 and 1970" and "Like the Aswan Low Dam, completed in 1902, the High Dam ..."):
    # one that gives its numbers is the statement it rests on.
    closest = [passage[a:b] for overlap, a, b in overlaps if overlap == best]
    if any(numbers <= numbers_in(candidate) for candidate in closest):
        return None
    said = numbers_in(closest[-1])
    moved = sorted(numbers - said)
    return moved[0] if said - numbers else None


# "the 1982 Nobel Prize": a year set before a name is that name's year.
YEAR_BEFORE_NAME = re.compile(r"\b(\d{4})\s+((?:[A-Z][\w'-]*\s*)+)")


def number_of_another_name(sentence: str, passage_sentence: str) -> str | None:
    """A year of `sentence` that its passage sentence sets before other names than those the answer
    gives it: "awarded the 1972 Neustadt International Prize ... and the 1982 Nobel Prize" does not
    say "won the Nobel Prize in 1972" (wkf11), though both years and all the words are there."""
    years_of: dict[str, set[str]] = {}
    for match in YEAR_BEFORE_NAME.finditer(passage_sentence):
        for word in match.group(2).split():
            years_of.setdefault(word.casefold(), set()).add(match.group(1))
    bound = YEAR_BEFORE_NAME.findall(sentence)
    years = {year for year in numbers_in(sentence) if re.fullmatch(r"\d{4}", year)}
    # The answer's own pairs: its "the 1982 Nobel Prize"s, or with one year, every name it gives.
    pairs = [(year, word) for year, name in bound for word in name.split()] if bound else \
        [(year, word) for year in years for word in names_in(sentence)] if len(years) == 1 else []
    for year, word in pairs:
        elsewhere = years_of.get(word.casefold())
        if elsewhere and year not in elsewhere and any(year in ys for ys in years_of.values()):
            return year
    return None
