"""BM25 tokens: known answers, so that indexing and querying agree and abbreviations survive."""

from __future__ import annotations

import pytest

from rag.lexical import STOP_WORDS, tokenize


@pytest.mark.parametrize("text, tokens", [
    ("What is CSF?", ["csf"]),
    ("When did IMET cease operations?", ["imet", "cease", "operation"]),
    ("Pakistan's armies and Pakistan’s allies", ["pakistan", "army", "pakistan", "ally"]),
    ("Tell me about the SOFA negotiations", ["sofa", "negotiation"]),
    ("Pak-US ties", ["pak-us", "tie"]),
    ("$73 billion in 2001", ["73", "billion", "2001"]),
    ("analysis class bus status", ["analysis", "class", "bus", "status"]),  # not plurals
    ("", []),
    ("the of and to", []),
])
def test_tokenize_known_answers(text, tokens):
    assert tokenize(text) == tokens


def test_query_and_passage_forms_meet():
    assert set(tokenize("which funds reimbursed the armies")) & set(tokenize("The fund reimbursed the army")) == {"fund", "reimbursed", "army"}


def test_stop_words_are_lower_case_words():
    assert all(word == word.lower() and word.isalpha() for word in STOP_WORDS)
    assert {"the", "what", "according"} <= STOP_WORDS and "csf" not in STOP_WORDS


def test_irregular_verb_forms_share_a_stem():
    from rag.lexical import stems

    assert stems("He became the first centibillionaire") >= stems("become")
    assert stems("The bridge was built in 1932") >= stems("When did they build the bridge?") - stems("when did they the")
    assert stems("found") != stems("find")  # "found" is also "to found": left as it is
    # A reply saying "got" for the question's "get" restates the question, it claims nothing new.
    assert stems("The build got faster") == stems("get faster build")


def test_a_capitalised_word_after_a_dot_inside_a_name_is_a_name():
    from rag.lexical import names_in

    # "asyncio.TaskPool" is not a sentence start: TaskPool is a name the documents must know.
    assert names_in("What does the asyncio.TaskPool class added in Python 3.11 do?") == {"taskpool", "python"}
    assert names_in("It ended. However the CSF paid. Then IMET ran") == {"csf", "imet"}


def test_a_name_with_a_lower_case_suffix_is_the_name():
    from rag.lexical import names_in

    # A passage on "Windows paths" is about what "Windows-style paths" names; "Coca-Cola" stays whole.
    assert names_in("On a Linux machine, which class reads Windows-style paths?") == {"linux", "windows"}
    assert names_in("The US-led talks and the Kerry-Lugar-Berman Act") == {"us", "kerry-lugar-berman", "act"}


@pytest.mark.parametrize("text, numbers", [
    ("three-eighths of the statue", {"3", "8"}),
    ("Beethoven's Ninth Symphony", {"9"}),
    ("twenty-one guns", {"21"}),
    ("a thirty-seven-volume work", {"30", "7", "37"}),  # the number inside a compound word
    ("the second line", {"2"}),
    ("no numbers here, only someone", set()),
])
def test_numbers_written_as_words_are_read_as_digits(text, numbers):
    from rag.lexical import spelled_numbers

    assert spelled_numbers(text) == numbers


@pytest.mark.parametrize("name, text, found", [
    ("pakistan's", "pakistani troops", True),
    ("sorting howto", "sorting how to - author: andrew dalke", True),  # the same name with a space
    ("howto", "sorting how to - author: andrew dalke", True),
    ("stone", "the best one", False),  # letters across a word's end are not the name
    ("kerry-lugar", "the kerry lugar act", True),
    ("sorting howto", "sorting algorithms, how to use them", False),  # words apart are not the name
])
def test_a_name_is_mentioned_however_it_is_spaced(name, text, found):
    from rag.lexical import mentioned

    assert mentioned(name, text) is found


def test_a_camel_case_name_is_code_but_a_spelling_like_iphone_is_not():
    from rag.lexical import code_names

    assert code_names("Does read.table default to stringsAsFactors, or readRDS?") == ["read.table", "stringsAsFactors", "readRDS"]
    assert code_names("An iPhone, mRNA vaccines, the kWh price at McDonald's") == []


def test_the_first_person_in_a_contraction_is_no_name():
    from rag.lexical import names_in

    assert names_in("In a regex, I'd like a lazy match; I’m sure I've seen Perl do it") == {"perl"}
