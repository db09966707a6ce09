"""Abbreviations: what a run of capitalised words abbreviates to, and spelling one out.

An answer may write "CSF" where its passage spells out "Coalition Support Fund", or the passage may
define "Coalition Support Fund (CSF)" where the answer only says "CSF": the citation check accepts
the first (`initialisms`), and the answer shown spells out the second (`expand_acronyms`). A name
spelling out an abbreviation of the question is not a new name (`spelled_out`).
"""

from __future__ import annotations

import re

_CAPITALISED_RUN = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:of\s+|and\s+)?[A-Z][a-z]+)+")


def initialisms(text: str) -> set[str]:
    """What runs of capitalised words abbreviate to, lower-cased: "United States" -> "us",
    "Coalition Support Fund" -> "csf", "Defence Consultative Group" -> "dcg". An answer may
    abbreviate a name its passage spells out."""
    found = set()
    for run in _CAPITALISED_RUN.findall(text):
        letters = "".join(word[0] for word in run.split() if word[0].isupper()).lower()
        # Every ending too: a sentence's first word is capitalised ("The Coalition Support Fund").
        found.update(letters[i:] for i in range(len(letters) - 1))
    return found


_DEFINITION = re.compile(r"((?:[A-Z][\w'-]*\s+){0,6}[A-Z][\w'-]*)\s+\(([A-Z]{2,6})\)")


def expand_acronyms(answer: str, passages: str) -> str:
    """Spell out an abbreviation the passages define ("Coalition Support Fund (CSF)") at its first
    use in the answer, when the answer does not already: readers should not have to guess."""
    for match in _DEFINITION.finditer(passages):
        words, acronym = match.group(1).split(), match.group(2)
        # The full name is the last len(acronym) capitalised words, when their initials spell it.
        full = words[-len(acronym):]
        if len(full) != len(acronym) or "".join(w[0] for w in full).upper() != acronym:
            continue
        name = " ".join(full)
        if name.lower() in answer.lower():
            continue
        answer = re.sub(rf"\b{acronym}\b(?!\))", f"{name} ({acronym})", answer, count=1)
    return answer


def spelled_out(answer: str, asked: set[str]) -> set[str]:
    """Words of the capitalised runs of `answer` whose initials spell a word of the question."""
    found: set[str] = set()
    for run in _CAPITALISED_RUN.finditer(answer):
        capitals = [w for w in run.group().split() if w[0].isupper()]
        letters = "".join(w[0] for w in capitals).lower()
        for i in range(len(letters) - 1):  # every ending: a sentence's "The" is capitalised too
            if letters[i:] in asked:
                found.update(w.lower() for w in capitals[i:])
    return found
