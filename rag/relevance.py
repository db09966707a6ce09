"""Does a passage answer *this* question? Checks beyond "its words are in the passage".

The citation check (citations.py) confirms that a sentence's words, numbers and names are in the
passage it cites. That is not enough: a small model answers "founded in 1947 [2]" where passage 2
gives the founding year of another organisation, the year a construction *began* when asked when
it *finished*, or a fluent answer to a question in another language from an unrelated passage.
Four general failures, four checks:

- subject: a question that names something (a person, a work, an organisation) is answered only
  from a passage about it: the passage, its section or its document's title names it;
- qualifier: a question asking for one end of an opposite pair (began/finished, born/died,
  first/last, opened/closed) is not answered by a sentence that states only the other end;
- language: a question in a language the collection is not written in is declined, since the
  retrieved passages can only match it by accident;
- role: "Who is the editor of ...?" is not answered from a passage that never names the role (a
  list of a paper's authors holds names, not its editor).
"""

from __future__ import annotations

import re
from collections import Counter

from .acronyms import spelled_out
from .lexical import STOP_WORDS, at_sentence_start, code_names, mentioned, names_in, quoted, stems, words

# Opposite ends of an event or a sequence. A question naming one side, answered by a sentence
# holding only words of the other side, is answered about the wrong end.
OPPOSITES = [
    ({"begin", "began", "begun", "beginning", "start", "started", "starting", "commenced", "initially", "originally"},
     {"finish", "finished", "complete", "completed", "completion", "end", "ended", "concluded", "until", "finally"}),
    ({"born", "birth"}, {"died", "death", "dead", "killed"}),
    ({"first", "earliest"}, {"last", "latest", "final"}),
    ({"opened", "opening"}, {"closed", "closing", "closure"}),
    ({"founded", "established", "created", "formed"}, {"dissolved", "abolished", "disbanded", "defunct"}),
    # The first time against a later return: "first launched" is not answered by "revived in 2022".
    ({"first", "initially", "originally", "launched", "founded", "introduced"},
     {"revived", "resumed", "restarted", "relaunched", "reopened", "reinstated", "reintroduced"}),
    # A toll against those merely touched: "How many people died?" is not answered by "affected
    # some 30 million people".
    ({"died", "death", "deaths", "dead", "killed", "perished", "fatalities"},
     {"affected", "injured", "wounded", "displaced", "infected", "survived", "survivors", "evacuated"}),
]

# Words that open a span of time ("from 1906 to 1909", "since 1982").
_SPAN_START = {"from", "since"}
_SPAN_END = {"to", "until", "till", "through"}
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def qualifier_mismatch(question: str, sentence: str) -> str | None:
    """The qualifier the question asks for when `sentence` states only its opposite, else None."""
    asked = set(words(question))
    said = set(words(sentence))
    if said & _SPAN_START:
        # "from 1917 until 1920" states its beginning (wkf14), and with "to" or "until" its end too.
        said |= {"beginning", "end"} if said & _SPAN_END else {"beginning"}
    for one, other in OPPOSITES:
        for wanted, opposite in ((one, other), (other, one)):
            if asked & wanted and not asked & opposite and said & opposite and not said & wanted:
                return sorted(asked & wanted)[0]
    return None


# A span of years ("from 395 to 410", "1906-1909"): its two ends.
_YEAR_SPAN = re.compile(r"\b(\d{3,4})\s*(?:[–-]|\s(?:to|until|till|through)\s)\s*(\d{3,4})\b")


def wrong_end_of_span(question: str, passage_sentence: str, answer: str) -> str | None:
    """The end a question asks for ("When did his reign end?") when the answer gives only the
    other end of a span its passage sentence states: "from 395 to 410" answered "395" (wkj14).
    The span's words say both ends, so `qualifier_mismatch` alone lets it pass."""
    asked = set(words(question))
    begins, ends = OPPOSITES[0]
    wanted = "end" if asked & ends and not asked & begins else "begin" if asked & begins and not asked & ends else None
    if wanted is None:
        return None
    asked_years = set(re.findall(r"\b\d{3,4}\b", question))
    given = set(re.findall(r"\b\d{3,4}\b", answer)) - asked_years
    for match in _YEAR_SPAN.finditer(passage_sentence):
        first, last = match.groups()
        right, other = (last, first) if wanted == "end" else (first, last)
        if other in given and right not in given:
            return sorted(asked & (ends if wanted == "end" else begins))[0]
    return None


# "Who is/was the <role> of ...?": the role is the last word before a preposition or the end.
_ROLE_QUESTION = re.compile(r"^\s*who\s+(?:is|was|are|were)\s+the\s+((?:[\w'’-]+\s+){0,4}?[\w'’-]+?)"
                            r"(?=\s+(?:of|for|in|at|on|to|from|behind|with|by|who|that|cited|named)\b|\s*\?|\s*$)", re.I)


# "Who composed/wrote/directed the <work> ...?": the maker of a work, asked by the verb of the
# making. The work is the lower-case words after the verb ("film score", "libretto").
_MAKER_QUESTION = re.compile(
    r"^\s*(?i:who)\s+(?:first\s+|originally\s+|initially\s+|actually\s+)?(?P<verb>wrote|composed|directed|painted|designed|"
    r"invented|discovered|founded|created|built|developed|authored|produced|sculpted|illustrated|translated|"
    r"choreographed|scored|engineered|drew|maintains|maintained|edits|edited|publishes|published|manages|managed)(?:\s+(?:the|a|an|its|their)(?=\s))?(?:\s+(?P<work>[a-z][a-z\s-]*?))?"
    r"(?=\s+(?:of|for|in|at|on|to|from|behind|with|by|that|and|as)\b|\s+[A-Z0-9]|\s*[?,]|\s*$)")
# Nouns for a maker that do not begin like the verb's stem ("the author of" says who wrote it).
_MAKER_NOUNS = {"write": ("author",)}


def role_missing(question: str, passage: str, title: str, section: str) -> str | None:
    """What the passage does not say when a "Who is the <role> of ...?" question asks for a role
    that the passage, its section and its document's title never name (nor its verb: "founded"
    names the founder): "who the editor is"; else None. Likewise the maker a "Who composed the film
    score ...?" question asks for, when the passage names neither the making ("composed",
    "composer") nor the work made by someone ("the libretto by ..."): a film "written and directed
    by" someone does not say who composed its score."""
    maker = _MAKER_QUESTION.match(question)
    role_match = None if maker else _ROLE_QUESTION.match(question)
    if not maker and not role_match:
        return None  # no role asked: the passage need not be stemmed (this runs for every cited sentence)
    where = stems(f"{title}\n{section}\n{passage}")
    if maker:
        (verb,) = stems(maker.group("verb"))
        if any(w.startswith((verb[:max(4, len(verb) - 1)], *_MAKER_NOUNS.get(verb, ()))) for w in where):
            return None  # "composed", "composer", "composition"; "written", "writer", "author"
        work = maker.group("work").split()[-1] if maker.group("work") else ""
        if work and re.search(rf"\b{re.escape(work)}\w*\W+(?:\w+\W+)?by\b", passage, re.I):
            return None
        made = " ".join(f"the {maker.group('work')}".split()) if maker.group("work") else "it"
        return f"who {maker.group('verb')} {made}"
    role = role_match.group(1).split()[-1]
    if not stems(role):
        return None
    (stem,) = stems(role)
    forms = {stem, stem[:-2]} if stem.endswith(("er", "or")) and len(stem) > 5 else {stem}
    return None if forms & where else f"who the {role} is"


# What a document is part of: the site that published it ("Python 3.11.2 documentation") or its
# publisher. Each of its passages is about that too, though few say so: "Where does Python keep a
# function's annotations?" was declined from the tutorial's own answer, a page that never writes
# "Python" (pyk01).
PUBLICATION_FIELDS = ("site", "publisher")


def publication(metadata: dict) -> str:
    """The site or publisher a document's metadata names ("" when none), for the subject check."""
    return " ".join(str(metadata.get(field) or "") for field in PUBLICATION_FIELDS).strip()


def off_subject(question: str, passage: str, title: str, section: str, known, published_in: str = "") -> list[str]:
    """The names of the question that the passage, its section and its document's title all lack,
    when it lacks every one of them; empty when the passage is about something the question names
    (or the question names nothing the collection knows). `known(name)` says whether the
    collection mentions a name at all: an unknown name is the unknown-name check's business.
    A name of what the document is part of (`published_in`, see `publication`) is taken as said
    and asks for nothing more: "Which version of SciPy first supported Python 3.11?" still needs
    a passage about SciPy (py29), "Where does Python keep ...?" none in particular."""
    names = [n for n in sorted(names_in(question)) if known(n) and not mentioned(n, published_in.lower())]
    if not names:
        return []
    where = f"{title}\n{section}\n{passage}".lower()
    return [] if any(mentioned(n, where) for n in names) else names


def other_language(question: str, known) -> bool:
    """Whether the question is in a language the collection is not written in: most of its words
    are neither English function words nor words of the collection (`known(word)`). Short
    questions and questions of names only are left alone."""
    letters = _LETTER.findall(question)
    if len(letters) < 8:
        return False
    if sum(1 for ch in letters if ch.isascii()) < len(letters) / 2:
        # Another script (Urdu, Chinese, ...): words the collection may know, like numbers, do not count.
        return not any(known(w) for w in words(question) if not w.isdigit() and len(w) > 2)
    tokens = re.findall(r"[^\W\d_]+", question.lower())
    if len(tokens) < 4:
        return False
    familiar = sum(1 for t in tokens if t in STOP_WORDS or known(t))
    return familiar < len(tokens) / 2


# --- parts of a question ---------------------------------------------------------------------------

# "..., and when ...?", "... and with whom?", "Where and on what date ...": a second question.
_WH = r"(?:how|what|which|who|whom|whose|when|where|why)"
# A question word, maybe after a preposition ("at which university ...", "with whom"): how a second
# question starts (searched for on its own by retrieval.search_parts).
QUESTION_START = rf"(?:(?:with|by|for|from|in|to|of|at|on|since|until)\s+)?{_WH}\b"
_SECOND_PART = re.compile(rf"(?:,\s*|\s+)and\s+(?={QUESTION_START})"
                          rf"|\?\s+(?=(?:(?:with|by|for|from|in|to|of|at|on)\s+)?{_WH}\b)", re.I)
_WHEN = re.compile(r"^(?:(?:with|by|for|from|in|to|of|at|on|since|until)\s+)?(?:when|what year|which year|what date|which years?)\b", re.I)
_HOW_MANY = re.compile(r"^(?:(?:with|by|for|from|in|to|of|at|on)\s+)?(?:(?:roughly|approximately|about|around|exactly)\s+)?(?:how (?:many|much|long|old|tall|far|big|large|high|heavy)"
                       r"|(?:what|which) (?:share|percentage|proportion|fraction|portion|number|amount)\b)\b", re.I)
_WHO = re.compile(r"^(?:(?:with|by|for|from|to|of)\s+)?(?:who|whom)\b"
                  r"|^(?:which|what)\s+(?:(?P<modifier>\w+)\s+)?(?:person|people|man|woman|king|queen|emperor|president|leader|author|writer|"
                  r"composer|scientist|explorer|conquistador|general|actor|actress|player|artist|architect|founder|ruler|pope|"
                  r"philosopher|poet|painter|inventor|director|mathematician|physicist|chemist)s?\b", re.I)
# "..., and what is it called?", "What was the ship named?": a name asked for.
_NAME_ASKED = re.compile(r"^(?:(?:and|so)\s+)?(?:what|how)\s+(?:is|was|are|were)\s+(?:it|they|he|she|this|that|these|those|the\s+[\w'’-]+)\s+"
                         r"(?:called|named|known\s+as)\b|^what\s+(?:is|was|are|were)\s+(?:its|their|his|her)\s+names?\b", re.I)
# "Which standard module should I use ...?", "In which country is ...?": the word before the verb
# is the kind of thing asked for ("module", "country").
_THING_ASKED = re.compile(r"^(?:(?:with|by|for|from|in|to|of|at|on)\s+)?(?:which|what)\s+(?P<words>(?:[\w'’-]+\s+){0,3}?[\w'’-]+)\s+"
                          r"(?:do|does|did|is|are|was|were|has|have|had|can|could|should|would|will|may|might|must)\b", re.I)
_YEAR = re.compile(r"1\d{3}|20\d{2}")
# Things asked for by "which <noun>" that are named, never numbered.
_NAMED_KINDS = {"country", "countries", "city", "cities", "town", "state", "nation", "nationality", "language", "languages",
                "continent", "island", "river", "region", "province", "capital", "university", "company", "kingdom", "empire"}
# A capitalised word inside a sentence, then a number: "in Python 3.8", "see PEP 673".
_NAMED_NUMBER = re.compile(r"(?<=[a-z,;] )[A-Z][\w+-]*\s+\d+(?:\.\d+)*\b")
_MONTH = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b", re.I)
_NUMBER_WORDS = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "twenty",
                 "thirty", "forty", "fifty", "hundred", "thousand", "million", "billion", "half", "third", "quarter", "dozen",
                 "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "hundredth"}  # fractions: "three-eighths"


def question_parts(question: str) -> list[str]:
    """The questions a compound question asks ("When did X ..., and with whom?" -> two)."""
    parts = [p.strip(" ,") for p in _SECOND_PART.split(question.strip()) if p.strip(" ,?")]
    # A part asked twice is one part ("When did X open? When did X open?").
    distinct: dict[str, str] = {}
    for part in parts:
        distinct.setdefault(part.rstrip("?").strip().lower(), part)
    parts = list(distinct.values())
    return parts if len(parts) > 1 else [question.strip()]


# Words by which a question points back at what was said before ("When did it open?").
POINTING_BACK = "it|its|they|them|their|this|that|these|those|he|him|his|she|her"
_REFERS_BACK = re.compile(rf"\b(?:{POINTING_BACK})\b", re.I)


def refers_back(part: str) -> bool:
    """Whether a question (part) points back at something named before it ("and when did it open?")."""
    return _REFERS_BACK.search(part) is not None


# Where one sentence of a question ends and the next begins.
_SENTENCE_BREAK = re.compile(r"(?<=[.!])\s+(?=[A-Z])")


def asked_sentence(part: str) -> str:
    """The sentence that asks, without the sentences before it that tell what the asker saw ("I
    called D(x^2, "x") and got 0 back. How should I ...?"): its figures are not what is asked about."""
    sentences = _SENTENCE_BREAK.split(part.strip())
    return sentences[-1] if len(sentences) > 1 and "?" in sentences[-1] else part


# A condition set before the question itself: "When opening a file for csv, what ...", "If two
# programs talk over IPv4, which host ...".
_LEADING_CLAUSE = re.compile(rf"^\s*(?:when|whenever|if|while|after|before|once)\b[^,?]*,\s*(?={QUESTION_START})", re.I)


def main_question(part: str) -> str:
    """The question without a condition set before it: "When opening a file for csv, what
    newline argument ...?" asks what, not when (pyf13)."""
    part = asked_sentence(part)  # "When I save ... . How do I ...?" asks how, not when (rmk09)
    clause = _LEADING_CLAUSE.match(part)
    return part[clause.end():] if clause else part


def kind_asked(part: str) -> str | None:
    """What a question (part) asks for, where that can be told from its first words: "time",
    "number", "person", "name" ("what is it called?") or "thing" ("which module ...?"); None for
    the rest (what, why, how, yes/no)."""
    part = main_question(part)
    if _WHEN.match(part):
        return "time"
    if _HOW_MANY.match(part):
        return "number"
    if _WHO.match(part):
        return "person"
    if _NAME_ASKED.match(part):
        return "name"
    if thing_asked(part):
        return "thing"
    return None


def thing_asked(part: str) -> str:
    """The kind of thing a "Which <noun> ...?" question asks for ("module"), else ""."""
    match = _THING_ASKED.match(main_question(part).strip())
    # "which version of R": the noun before a preposition.
    noun = re.split(r"\s+(?:of|for|in|on|at|from|with|to|by)\s+", match.group("words"))[0].split()[-1].lower() if match else ""
    return noun if noun and noun not in STOP_WORDS and noun not in _NUMBER_WORDS else ""


def answers_part(part: str, answer: str, question: str, needed: int = 1) -> bool:
    """Whether `answer` holds the kind of thing `part` asks for (a time, a number, a person, a
    name, the thing of "which <thing>"), beyond what the question already says; parts of other
    kinds are taken as answered. `needed`:
    how many different times or numbers it must hold (the second "when" part of one question needs
    a second date)."""
    asked = set(words(question))
    new_words = [w for w in words(answer) if w not in asked]
    kind = kind_asked(part)
    if kind == "time":
        years = {w for w in new_words if re.fullmatch(r"\d{3,4}s?", w)}
        dated = bool(years) or any(_MONTH.fullmatch(w) or w in ("century", "bc", "ad") for w in new_words)
        return dated and max(len(years), 1) >= needed
    if kind == "number":
        # A year is not a count: "It happened in 1770" does not say how many.
        def is_amount(w: str) -> bool:
            if re.fullmatch(r"[\w]+-(?:most|least|\w+est)", w):
                return False  # a rank: "the third-most produced polymer" says not how much is made (wkk09)
            return w not in asked and ((any(ch.isdigit() for ch in w) and not _YEAR.fullmatch(w))
                                       or any(piece.removesuffix("s") in _NUMBER_WORDS for piece in w.split("-"))  # "three-eighths"
                                       or w.endswith("fold"))  # "a hundredfold", "tenfold" are amounts too
        # One amount may take several words ("30 million"): runs of them count once each. A number
        # that follows a name inside a sentence is that name's version or number ("a deprecation in
        # Python 3.8", "PEP 673"), not an amount (pyf18 was answered "how many threads" with it).
        flags = [is_amount(w) for w in words(_NAMED_NUMBER.sub(" ", answer))]
        amounts = sum(1 for i, flag in enumerate(flags) if flag and (i == 0 or not flags[i - 1]))
        return amounts >= needed
    if kind == "person":
        # A person the question does not name; a name spelling out one of its abbreviations
        # ("National Basketball Association" for "NBA") is not one.
        # A run of capitalised words holding a name of the question is that same person
        # ("Sir Isaac Newton" when the question names Newton).
        ignored = names_in(question) | spelled_out(answer, asked)
        # A name qualifying the role asked for ("Which Inca emperor ...?") is no person of the
        # question: "Topa Inca Yupanqui" names the emperor (wkk04 was declined for it).
        role = _WHO.match(main_question(part))
        modifier = {role.group("modifier").lower()} if role and role.group("modifier") else set()
        ignored -= modifier
        for run in re.finditer(r"[A-Z][\w'’.-]*(?:\s+(?:(?:van|von|de|da|del|der|di|du|la|le|bin|ibn|al)\s+)?[A-Z][\w'’.-]*)*", answer):
            text = run.group()
            if at_sentence_start(answer, run.start()) and len(answer.split()) > 3:
                # A sentence's first word is capitalised anyway ("Widely regarded ..."); an answer
                # of a few words ("Leibniz.") is the name itself.
                text = text.partition(" ")[2]
            run_names = names_in(f"The {text}") - modifier if text else set()
            if run_names and not run_names & ignored:
                return True
        return False
    if kind == "name":
        # Some word the question does not hold, other than a count: "supplies 1 concrete tzinfo
        # class" has not said what the class is called (pyh08).
        return any(not any(ch.isdigit() for ch in w) and w not in _NUMBER_WORDS for w in stems(answer) - stems(question) - STOP_WORDS)
    if kind == "thing":
        # The thing named, or a name or a number the question lacks ("SEATO and CENTO" for "Which
        # alliances ...?", "R 1.7.1" for "which version"): "You may also want to use a handy
        # function ..." names no module (pyh04).
        # A literal the answer quotes or writes as code names it too ('hard-coded to "qmark"' for
        # "What parameter style ...?", pyg02).
        # A place or a people is named, never numbered: "In 1728, Bering explored the sea" does not
        # say in which country he was born (wkg15).
        named_kind = thing_asked(part) in _NAMED_KINDS
        return bool(stems(thing_asked(part)) & stems(answer)) or bool(names_in(answer) - names_in(question)) \
            or (not named_kind and any(any(ch.isdigit() for ch in w) for w in new_words)) \
            or bool(quoted(answer) - quoted(question)) or bool(set(code_names(answer)) - set(code_names(question)))
    return True


def mentions_own_names(part: str, question: str, answer: str) -> bool:
    """Whether `answer` mentions one of the names that `part` alone of the question's parts
    names ("..., and which RFC specifies JSON?": JSON); true when the part names nothing of its
    own. An answer that never mentions it answered another part (py15, py16). A function the
    part writes as a call ("registered by autoload()?") is one of its names too: "isSeekable
    reports if seek can change the position" answers the other part only (rmk12)."""
    def named(text: str) -> set[str]:
        return names_in(text) | {call.lower() for call in _CALL.findall(text)}

    parts = question_parts(question)
    own = named(part) - {n for other in parts if other != part for n in named(other)}
    # A one- or two-letter name ("R") is in nearly any text as letters: only a whole word counts.
    return not own or any(re.search(rf"\b{re.escape(n)}\b", answer.lower()) if len(n) < 3 else mentioned(n, answer.lower())
                          for n in own)


# A function written as a call, "autoload()": its name.
_CALL = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*)\(\)")


def unanswered_parts(question: str, answer: str) -> list[str]:
    """The parts of a question that `answer` leaves without the time, number or person it asks
    for (small models often answer the first part of a compound question only, or answer "When
    ...?" with who did it); a simple question is its own single part."""
    missing, seen, seen_things = [], Counter(), Counter()
    parts = question_parts(question)
    asked_things = [_noun_after_which(part) for part in parts]
    for part, thing in zip(parts, asked_things):
        kind = kind_asked(part)
        # Two parts asking for a time (or a number) are answered by two different ones: "first
        # performed, and first published?" answered with one year has answered one part only.
        seen[kind] += 1
        # Likewise two parts asking "at which university": one university named answers one part.
        seen_things[thing] += 1
        too_few = bool(thing) and asked_things.count(thing) > 1 and _mentions(answer, thing) < seen_things[thing]
        # Not the first part: an answer often leaves out the subject it was asked about.
        unmentioned = part is not parts[0] and not mentions_own_names(part, question, answer)
        if unmentioned or too_few or not answers_part(part, answer, question, needed=seen[kind] if kind in ("time", "number") else 1):
            missing.append(part)
    return missing


_WHICH_THING = re.compile(r"^(?:(?:with|by|for|from|in|to|of|at|on)\s+)?(?:which|what)\s+([^\W\d_]{3,})\b", re.I)


def _noun_after_which(part: str) -> str:
    """The kind of thing a "which <noun> ...?" part asks for ("university"); "" for others."""
    match = _WHICH_THING.match(main_question(part).strip())
    noun = match.group(1).lower() if match else ""
    return "" if noun in STOP_WORDS or kind_asked(part) in ("time", "number") else noun


def _mentions(text: str, noun: str) -> int:
    """How many times `text` names a thing of this kind ("University of Adelaide" for "university")."""
    return len(re.findall(rf"\b{re.escape(noun)}(?:s|es)?\b", text, re.I))


_ASKS_WH = re.compile(rf"^(?:(?:with|by|for|from|in|to|of|at|on)\s+)?{_WH}\b", re.I)


def subject_parts(question: str, passages_text: str) -> list[str]:
    """A question asked of two named subjects at once ("In which years did Toni Morrison and
    Kenzaburō Ōe receive the Nobel Prize?"), as one question per subject; [] for any other. Two
    names joined by "and" that the passages hold as one phrase are one name ("Pride and
    Prejudice", "Bosnia and Herzegovina")."""
    if not _ASKS_WH.match(question):  # "Did Ali and Omar meet?" asks about the two together
        return []
    tokens = list(re.finditer(r"\S+", question))
    capitalised = [t.group()[0].isupper() and t.group().lower() not in STOP_WORDS for t in tokens]
    for i, token in enumerate(tokens):
        if token.group() != "and" or i == 0 or i + 1 >= len(tokens) or not (capitalised[i - 1] and capitalised[i + 1]):
            continue
        first = i - 1
        while first > 0 and capitalised[first - 1]:
            first -= 1
        last = i + 1
        while last + 1 < len(tokens) and capitalised[last + 1]:
            last += 1
        start, end = tokens[first].start(), tokens[last].end()
        joined = question[start:end].rstrip("?,.;:")
        end = start + len(joined)
        if " ".join(joined.lower().split()) in " ".join(passages_text.lower().split()):
            return []
        left, right = question[start:token.start()].strip(), question[token.end():end].strip()
        return [f"{question[:start]}{left}{question[end:]}", f"{question[:start]}{right}{question[end:]}"]
    return []


def rewrite_keeps_question(question: str, rewritten: str) -> bool:
    """Whether a follow-up's rewrite still asks what it asked: a question still (not "Among
    programmers of Python, it was popularized.", pyk15, an answer guessed in its place), naming
    everything the follow-up named ("Which Octave command ...?" rewritten without "Octave", rmk15)."""
    if question.rstrip().endswith("?") and not rewritten.rstrip().endswith("?"):
        return False
    return all(mentioned(name, rewritten.lower()) for name in names_in(question))
