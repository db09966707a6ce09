"""Words of a text, in the forms the stages compare them.

- `tokenize`: BM25 tokens: lower case, no stop words, plurals and possessives folded. Kept
  deliberately simple and deterministic, so the same function serves indexing and querying and
  abbreviations such as "CSF" or "IMET" survive as exact tokens.
- `stems`: word stems, for the citation check.
- `names_in` / `mentioned`: names a text uses, and whether another text mentions them (the
  citation check, and retrieval's "does any document name this at all").
"""

from __future__ import annotations

import re
from functools import lru_cache

# Connectives a sentence may add without claiming anything ("Also, IMET ceased ...").
FILLER_STEMS = {"also", "howev", "yes", "overal", "thus", "therefor", "furthermor", "moreov", "addit", "addition",
                "instead", "inde", "specif", "accord", "state", "mention", "passag", "document", "op-", "op-ed",
                "paper", "review", "articl", "author"}


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


def fold(word: str) -> str:
    """Plurals and possessives to the base word, as BM25 tokens have them."""
    word = word.removesuffix("'s").removesuffix("’s")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Every word, lower case, stop words included, nothing folded."""
    return _WORD.findall(text.lower().replace("’", "'"))


def tokenize(text: str) -> list[str]:
    return [fold(w) for w in words(text) if w not in STOP_WORDS]


_NAME = re.compile(r"\b[A-Z][\w'’-]*")
_LOWER_SUFFIXES = re.compile(r"(?:-[a-z][\w'’]*)+$")


def at_sentence_start(text: str, position: int) -> bool:
    """Whether `position` starts a sentence: the text's start, or after ". " (punctuation and a
    space), not inside a dotted name such as "asyncio.TaskPool"."""
    before = text[:position]
    return not before.strip() or (before[-1].isspace() and before.rstrip()[-1] in ".!?:")


_FIRST_PERSON = re.compile(r"i['’](?:d|ll|ve|m)")


def names_in(text: str) -> set[str]:
    """Capitalised words that look like names. A sentence's first word is capitalised anyway
    ("Also", "However"), so it counts only when it is an acronym like "IMET"."""
    names = set()
    for match in _NAME.finditer(text):
        raw = match.group().rstrip("'’").removesuffix("'s").removesuffix("’s")
        # "Windows-style", "US-led", "Lahore-based": the name is the capitalised part; a passage
        # about "Windows paths" names it without the suffix.
        raw = _LOWER_SUFFIXES.sub("", raw)
        if at_sentence_start(text, match.start()) and not (raw.isupper() and len(raw) > 1):
            continue
        word = raw.lower()
        # "I'd like ...", "I'm": the first person in a contraction is no name (pyj07's question was
        # taken to be about "I'd", which no passage is about, and its right answer removed).
        if _FIRST_PERSON.fullmatch(word):
            continue
        if word not in STOP_WORDS and not word.isdigit():
            names.add(word)
    return names


_PREFIXES = ("out", "over", "under", "re", "un", "mis", "counter", "up", "non", "pre")
_ENDINGS = ("ly", "ies", "es", "s", "ed", "ing", "ish", "ness", "ment", "er", "est")


def is_everyday_word(word: str, vocabulary: frozenset[str]) -> bool:
    """Whether `word` is a common word of `vocabulary` or a form of one ("accompanies" of
    "accompany", "nightmarishly" of "nightmare", "outshines" of "shine"): a common prefix and up
    to three endings are taken off, each time trying the bare stem and the stem with "e" or "y"
    restored."""
    # "outshines" is "shines" made over (wkf08, declined as a term no document uses).
    forms = {word} | {word[len(prefix):] for prefix in _PREFIXES if word.startswith(prefix) and len(word) - len(prefix) >= 4}
    for _ in range(3):
        forms |= {stem + extra for form in forms for ending in _ENDINGS
                  if form.endswith(ending) and len(form) - len(ending) >= 3
                  for stem in [form[: -len(ending)]] for extra in ("", "e", "y")}
    return not forms.isdisjoint(vocabulary)


# A dotted, underscored or camel-case name, as code writes it: "data.table", "functools.lru_cache",
# "__init__", "stringsAsFactors". Camel case needs two lower-case letters first: "iPhone", "mRNA"
# and "kWh" are how words are spelled, not code.
_CODE_NAME = re.compile(r"(?<![\w.])(?:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|_*[A-Za-z]\w*?_+\w+|[a-z]{2,}[A-Z][A-Za-z0-9]*(?![\w.]))")


def code_names(text: str) -> list[str]:
    """Names written as code in `text` ("bug.report", "sys.argv", "lru_cache"), in order, once
    each; "e.g." and "i.e." are not code."""
    return [name for name in dict.fromkeys(_CODE_NAME.findall(text)) if all(len(part) >= 2 for part in name.split("."))]


# A literal set in double quotes or backticks ("qmark", `zfill`): a value the text names exactly.
_QUOTED = re.compile(r"[\"“`]([^\"“”`\n]{1,40})[\"”`]")


def quoted(text: str) -> set[str]:
    """The literals `text` sets in double quotes or backticks, case-folded."""
    return {q.strip().casefold() for q in _QUOTED.findall(text) if q.strip()}


def terms_in(text: str) -> list[str]:
    """Lower-case words of `text` that may name a thing ("orjson", "tidyverse"): not stop words,
    numbers or parts of capitalised names (names_in has those), the parts of "time-critical" one
    by one. Whether one is a plain word is for is_everyday_word to say."""
    found = []
    for match in re.finditer(r"(?<![\w'’-])[a-z][a-z0-9]*(?:-[a-z0-9]+)*", text.replace("’", "'")):
        for part in match.group().split("-"):
            if len(part) >= 3 and part not in STOP_WORDS and not part.isdigit():
                found.append(part)
    return found


# Numbers written as words: a passage's "three-eighths" states the "3/8" of an answer, and its
# "Symphony No. 9" is the "Ninth Symphony" of a question.
_UNIT_WORDS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
               "sixteen seventeen eighteen nineteen").split()
_ORDINAL_WORDS = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
                  "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth").split()
_TEN_WORDS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
NUMBER_WORDS = ({w: n for n, w in enumerate(_UNIT_WORDS, start=1)} | {w: n for n, w in enumerate(_ORDINAL_WORDS, start=1)}
                | _TEN_WORDS | {w[:-1] + "ieth": n for w, n in _TEN_WORDS.items()} | {"half": 2, "halve": 2, "quarter": 4, "dozen": 12})


def number_value(word: str) -> int | None:
    """The number a lower-case word spells ("ninth" 9, "eighths" 8, "twenty-one" 21), or None."""
    pieces = [NUMBER_WORDS.get(p) or NUMBER_WORDS.get(p.removesuffix("s")) for p in word.split("-")]
    if len(pieces) == 2 and pieces[0] in _TEN_WORDS.values() and pieces[1] and pieces[1] < 10:
        return pieces[0] + pieces[1]
    return pieces[0] if len(pieces) == 1 else None


# Words of an order that are never a fraction either: "first glance" states no amount, so it
# backs an answer's "1st" but not its "1" ("supplies 1 concrete tzinfo class", pyh08).
ORDER_ONLY = {"first", "second"}


def spelled_numbers(text: str, amounts_only: bool = False) -> set[str]:
    """The numbers that `text` writes as words, as digits ("three-eighths" -> {"3", "8"});
    `amounts_only`: not counting "first" and "second", which give an order, not an amount."""
    found = set()
    for word in words(text):
        if amounts_only and word in ORDER_ONLY:
            continue
        value = number_value(word)
        if value is not None:
            found.add(str(value))
        elif "-" in word:
            # "a thirty-seven-volume work" states 37 (wkf03), as well as its pieces.
            pieces = word.split("-")
            found.update(str(v) for v in map(number_value, pieces) if v is not None)
            found.update(str(v) for v in (number_value(f"{a}-{b}") for a, b in zip(pieces, pieces[1:])) if v is not None)
    return found


def mentioned(name: str, evidence_lower: str) -> bool:
    """A name is in the (lower-cased) text, allowing another ending of the same word ("Pakistani"
    for "Pakistan's", "American" for "America"), and spaces or hyphens written in one and not the
    other ("Sorting HOWTO" for the document's "Sorting HOW TO", "Kerry-Lugar" for "Kerry Lugar")."""
    if name in evidence_lower or (len(name) >= 6 and name[: max(5, len(name) - 3)] in evidence_lower):
        return True
    spaced = _spaced_anyhow(name)
    return spaced is not None and spaced.search(evidence_lower) is not None


@lru_cache(maxsize=4096)
def _spaced_anyhow(name: str) -> re.Pattern | None:
    """The name's letters with a space or hyphen allowed between any two, as whole words ("how to"
    for "howto", not the "st one" of "best one" for "stone"); None for a short or odd name."""
    letters = re.sub(r"[\s‐-]+", "", name)
    if len(letters) < 4 or not letters.isalnum():
        return None
    return re.compile(r"\b" + r"[\s‐-]?".join(map(re.escape, letters)) + r"\b")


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


# Irregular verb forms, which a suffix stemmer leaves apart ("became" -> "becam", "become" ->
# "becom"): a passage saying "became" supports a sentence or question saying "become". Forms
# that are also other common words are left out ("found", "left", "lead", "saw", "bore").
_IRREGULAR = {form: verb for verb, forms in {
    "arise": "arose arisen", "become": "became", "begin": "began begun", "break": "broke broken",
    "bring": "brought", "build": "built", "buy": "bought", "catch": "caught", "choose": "chose chosen",
    "come": "came", "draw": "drew drawn", "drive": "drove driven", "eat": "ate eaten", "fall": "fell fallen",
    "feel": "felt", "fight": "fought", "fly": "flew flown", "forget": "forgot forgotten", "get": "got gotten",
    "freeze": "froze frozen", "give": "gave given", "go": "went gone", "grow": "grew grown", "hear": "heard",
    "hide": "hid hidden", "hold": "held", "keep": "kept", "know": "knew known", "lose": "lost", "make": "made",
    "mean": "meant", "meet": "met", "pay": "paid", "ride": "rode ridden", "rise": "rose risen", "run": "ran",
    "seek": "sought", "sell": "sold", "send": "sent", "shake": "shook shaken", "sing": "sang sung",
    "sink": "sank sunk", "speak": "spoke spoken", "spend": "spent", "stand": "stood", "steal": "stole stolen",
    "strike": "struck stricken", "swim": "swam swum", "take": "took taken", "teach": "taught",
    "tell": "told", "think": "thought", "throw": "threw thrown", "understand": "understood",
    "wear": "wore worn", "win": "won", "withdraw": "withdrew withdrawn", "write": "wrote written",
    "say": "said", "see": "seen", "lead": "led", "sit": "sat", "shoot": "shot", "dig": "dug",
    "sleep": "slept", "sweep": "swept", "deal": "dealt", "flee": "fled", "tear": "tore torn", "wake": "woke woken",
    "shine": "shone", "forbid": "forbade forbidden", "forgive": "forgave forgiven", "undergo": "underwent undergone",
    "overcome": "overcame", "rebuild": "rebuilt", "stick": "stuck", "swing": "swung", "spin": "spun",
    "bend": "bent", "slide": "slid", "strive": "strove striven", "bite": "bitten",
}.items() for form in forms.split()}


def stems(text: str) -> set[str]:
    """Word stems ("aimed" and "aim" -> "aim"; "became" and "become" -> "becom"): to compare a
    generated sentence with a passage that says the same thing in another form of the same words."""
    return set(_stemmer().stemWords([_IRREGULAR.get(w, w) for w in tokenize(text)]))
