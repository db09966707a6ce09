"""Question-relevance checks: subject, qualifier and language, on known answers."""

from __future__ import annotations

import pytest

from rag.relevance import off_subject, other_language, qualifier_mismatch

VOCABULARY = {"dam", "aswan", "nile", "built", "egypt", "bell", "telephone", "founded", "company", "install", "numpy",
              "windows", "package", "cricket", "world", "cup", "1992", "won"}


def known(word: str) -> bool:
    return word in VOCABULARY


@pytest.mark.parametrize("question, sentence, wrong", [
    ("When was the dam finished?", "Construction of the dam began in 1960.", "finished"),
    ("When did construction of the dam begin?", "The dam was completed in 1970.", "begin"),
    ("When was he born?", "He died in 1922 in Nova Scotia.", "born"),
    ("What was her first novel?", "Her last novel was published in 2015.", "first"),
    ("When was the dialogue first launched?", "The dialogue, revived in 2022, addressed concerns.", "first"),
    ("How many people died in the famine?", "The famine affected some 30 million people.", "died"),
])
def test_a_sentence_stating_only_the_opposite_end_is_caught(question, sentence, wrong):
    assert qualifier_mismatch(question, sentence) == wrong


@pytest.mark.parametrize("question, sentence", [
    ("When was the dam finished?", "The dam was built between 1960 and 1970."),  # neither end named: the answer may hold
    ("When was the dam finished?", "Work began in 1960 and was completed in 1970."),  # both ends
    ("When did it begin and when did it end?", "It began in 1960."),  # the question asks for both
    ("Who founded the company?", "Bell founded the company in 1885."),
    ("When was the dialogue first launched?", "Launched in 2001, the dialogue was revived in 2022."),  # both
    ("How many people died in the famine?", "It affected 30 million people, of whom 10 million died."),  # both
])
def test_other_sentences_pass_the_qualifier_check(question, sentence):
    assert qualifier_mismatch(question, sentence) is None


def test_a_passage_about_another_subject_is_caught():
    assert off_subject("When was the Aswan Dam built?", "The telephone company was founded in 1885.", "Bell", "", known) == ["aswan", "dam"]


@pytest.mark.parametrize("question, passage, title", [
    ("When was the Aswan Dam built?", "It was built between 1960 and 1970 across the Nile.", "Aswan High Dam"),  # the title names it
    ("When was the Aswan Dam built?", "The Aswan High Dam was built between 1960 and 1970.", "Dams of Egypt"),
    ("when was the dam built", "Something else entirely.", "Other"),  # no names: nothing to check
    ("When was the Kariba Dam built?", "The dam was built in 1960.", "Dams"),  # "kariba" is unknown: another check's job
])
def test_passages_about_the_question_s_subject_pass(question, passage, title):
    assert off_subject(question, passage, title, "", known) == []


@pytest.mark.parametrize("question, foreign", [
    ("1992 کا کرکٹ ورلڈ کپ کس ٹیم نے جیتا تھا؟", True),
    ("Wie installiere ich NumPy mit conda unter Windows?", True),
    ("¿Cómo entreno una red neuronal con TensorFlow en R?", True),
    ("How do I install numpy on Windows?", False),
    ("Who won the 1992 cricket world cup?", False),
    ("Aswan?", False),  # too short to tell
])
def test_questions_in_another_language_are_recognised(question, foreign):
    assert other_language(question, known) is foreign


@pytest.mark.parametrize("question, parts", [
    ("When did Bill Gates co-found Microsoft, and with whom?", ["When did Bill Gates co-found Microsoft", "with whom?"]),
    ("Where and on what date was the symphony first performed?", ["Where", "on what date was the symphony first performed?"]),
    ("Which prize did she win? In what year?", ["Which prize did she win", "In what year?"]),
    ("What did Pakistan and the US agree?", ["What did Pakistan and the US agree?"]),
    # A part asked again is one part: a pasted question repeated 40 times asks two things.
    ("When did the port open and who funded it? When did the port open and who funded it?",
     ["When did the port open", "who funded it"]),
])
def test_question_parts(question, parts):
    from rag.relevance import question_parts

    assert question_parts(question) == parts


@pytest.mark.parametrize("question, answer, missing", [
    ("When did Gates co-found Microsoft, and with whom?", "Gates co-founded Microsoft in 1975.", ["with whom?"]),
    ("When did Gates co-found Microsoft, and with whom?", "Gates co-founded Microsoft with Paul Allen in 1975.", []),
    ("Which prize did Morrison win, and in what year?", "She won the Pulitzer Prize.", ["in what year?"]),
    ("How many people did it affect, and when?", "It affected 30 million people in 1770.", []),
    ("How many people did it affect, and when?", "It happened in 1770.", ["How many people did it affect"]),
    ("What is CSF?", "Nothing.", []),
    # Two "when" parts answered with one year: the second part is still open.
    ("When was the play first performed, and when was it first published?", "It was first performed in 1606.",
     ["when was it first published?"]),
    ("When was the play first performed, and when was it first published?",
     "It was first performed in 1606 and published in 1623.", []),
    ("How many ships sailed, and how many returned?", "Five ships sailed.", ["how many returned?"]),
    # "What share ..." asks for an amount; "30 million" is one amount, not two.
    ("How many people did the famine affect, and what share of the population was that?", "It affected 30 million people.",
     ["what share of the population was that?"]),
    ("How many people did the famine affect, and what share of the population was that?",
     "It affected 30 million people, a third of the population.", []),
    ("What share of a statue's size is its head?", "The heads account for three-eighths of the size of the statue.", []),
    # A later part naming something of its own is open until the answer mentions it.
    ("Which RFC describes CSV, and which RFC specifies JSON?", "CSV is described in RFC 4180.", ["which RFC specifies JSON?"]),
    ("Which RFC describes CSV, and which RFC specifies JSON?", "CSV is in RFC 4180 and JSON in RFC 8259.", []),
    ("Who wrote the Unicode HOWTO, and who wrote the Sorting HOWTO?", "The Unicode HOWTO was written by Andrew Kuchling.",
     ["who wrote the Sorting HOWTO?"]),
    # ... but the first part's subject may go unsaid.
    ("When was Macbeth first performed, and when was it first published?", "First performed in 1606, published in 1623.", []),
    # "What is it called?" asks for a name: a count alone, in the question's own words, gives none.
    ("How many concrete tzinfo classes does the module supply, and what is it called?",
     "The module supplies 1 concrete tzinfo class.", ["what is it called?"]),
    ("How many concrete tzinfo classes does the module supply, and what is it called?",
     "It supplies one, the timezone class.", []),
    # "Which <thing> ...?" needs the thing, or a name or number the question lacks.
    ("Which standard module should I use to time code?", "You may want to use a handy function.",
     ["Which standard module should I use to time code?"]),
    ("Which standard module should I use to time code?", "The timeit module.", []),
    ("Which alliances did Pakistan join?", "Pakistan joined SEATO and CENTO.", []),
    ("With which version of R did support end?", "It ended with R 1.7.1.", []),
])
def test_unanswered_parts(question, answer, missing):
    from rag.relevance import unanswered_parts

    assert unanswered_parts(question, answer) == missing


@pytest.mark.parametrize("answer, names_someone", [
    ("Leibniz.", True),
    ("Newton shares credit with the mathematician Gottfried Wilhelm Leibniz.", True),
    ("Sir Isaac Newton.", False),  # the question's own person
    ("Widely regarded as great, Newton developed it in the 1660s.", False),  # a capitalised first word is no name
    ("The National Basketball Association (NBA) credits Newton.", False),  # spells out the question's NBA
])
def test_a_who_answer_must_name_someone_the_question_does_not(answer, names_someone):
    from rag.relevance import answers_part

    question = "Who shares the NBA credit with Newton for inventing calculus?"
    assert answers_part(question, answer, question) is names_someone


@pytest.mark.parametrize("question, passage, missing", [
    ("Who is the editor of the ASIO journal?", "Authors: Ali, Muhammad Sarmad Waqar, Malik Danial Ishtiaq.", "who the editor is"),
    ("Who is the current president of the foundation?", "The foundation is a not-for-profit body.", "who the president is"),
    # The maker of a work, asked by the verb of the making:
    ("Who composed the film score for The Seventh Seal?", "The Seventh Seal is a 1957 film written and directed by Ingmar Bergman.",
     "who composed the film score"),
    ("Who composed the opera Carmen?", "Carmen is an opera by the French composer Georges Bizet.", None),  # the maker's noun
    ("Who wrote the libretto of Carmen?", "The libretto by Henri Meilhac and Ludovic Halévy.", None),  # the work, by someone
    ("Who initially wrote R?", "R was initially written by Robert Gentleman and Ross Ihaka.", None),  # an irregular form
    # A work named by a name, not by lower-case words ("R's support ...", "PEP 249"):
    ("Who wrote R's support for connections?", "Brian Ripley is the author of the support for connections.", None),
    ("Who wrote R's support for connections?", "Connections are used in R in the sense of Chambers (1998) and Ripley (2001).",
     "who wrote it"),
    ("Who wrote PEP 249, the database API?", "PEP 249 was written by Marc-André Lemburg.", None),
    ("Who wrote and directed The Seventh Seal?", "The Seventh Seal is a 1957 film written and directed by Ingmar Bergman.", None),
    ("Who designed the bridge?", "The bridge was built in 1890 by the city.", "who designed the bridge"),
    # A role asked by a verb of looking after a thing (rmf11: "provided by Fedora" is no maintainer):
    ("Who maintains the R binaries for Fedora?", "RPMs for a selection of R packages are also provided by Fedora.",
     "who maintains it"),
    ("Who maintains the R binaries for Fedora?", "R binaries for Fedora, maintained by Tom Callaway, are provided.", None),
    ("Who was the first European to reach the Inca Empire?", "Aleixo Garcia was the first European to reach it.", None),
    ("Who was the US Secretary of Defense cited about the soldiers?", "said then-US Secretary of Defense Robert Gates", None),
    ("Who was the founder of the company?", "The company was founded by two friends.", None),  # the role's verb names it
    ("Who won the trophy?", "Lahore won in 2019.", None),  # no role asked
])
def test_a_role_asked_for_must_be_named_by_the_passage(question, passage, missing):
    from rag.relevance import role_missing

    assert role_missing(question, passage, "", "") == missing


@pytest.mark.parametrize("question, passages, parts", [
    ("In which years did Toni Morrison and Kenzaburō Ōe receive the Nobel Prize?", "",
     ["In which years did Toni Morrison receive the Nobel Prize?", "In which years did Kenzaburō Ōe receive the Nobel Prize?"]),
    ("When were Karachi and Lahore founded?", "", ["When were Karachi founded?", "When were Lahore founded?"]),
    ("Who wrote Pride and Prejudice?", "Pride and Prejudice is a novel.", []),  # one name, as the passages hold it
    ("Did Ali and Omar meet?", "", []),  # asks about the two together
    ("What is the difference between lists and tuples?", "", []),  # no names
])
def test_a_question_of_two_named_subjects_is_one_question_per_subject(question, passages, parts):
    from rag.relevance import subject_parts

    assert subject_parts(question, passages) == parts


def test_two_parts_asking_for_the_same_kind_of_thing_need_two_of_them():
    from rag.relevance import unanswered_parts

    question = "At which university were the notes written, and at which university was R first written?"
    assert unanswered_parts(question, "The notes were written at the University of Adelaide.") == [
        "at which university was R first written?"]
    assert unanswered_parts(question, "The notes at the University of Adelaide, R at the University of Auckland.") == []


def test_the_thing_asked_after_a_condition_is_the_main_questions():
    from rag.relevance import answers_part, thing_asked

    question = "Before R 4.2.0 made libcurl the HTTPS default, which download method was the default on Windows?"
    assert thing_asked(question) == "method"
    assert answers_part(question, 'The default download method on Windows was "wininet".', question)


def test_a_quoted_literal_or_a_code_name_names_the_thing_asked():
    from rag.relevance import answers_part

    question = "What quoting mode is writer.quoting set to by default?"
    assert answers_part(question, 'The writer.quoting is set to "minimal" by default.', question)
    assert answers_part(question, "It is set to `csv.QUOTE_MINIMAL` by default.", question)
    assert not answers_part(question, "The writer.quoting is set by default.", question)


@pytest.mark.parametrize("part, kind", [
    ("what is it called?", "name"), ("What was the ship named?", "name"), ("What is its name?", "name"),
    ("What is called a closure?", None),  # no subject between the verb and "called": not a name asked for
    ("Which standard module should I use to time code?", "thing"), ("With which version of R did it end?", "thing"),
    # A condition before the question is not what it asks: "When opening a file, what ..." asks what.
    ("When opening a file for the csv module, which argument should I pass", "thing"),
    ("If I call it twice, how many items are there?", "number"), ("When did it open?", "time"),
])
def test_a_name_asked_for(part, kind):
    from rag.relevance import kind_asked

    assert kind_asked(part) == kind


def test_an_answer_giving_the_other_end_of_a_span_is_the_wrong_end():
    from rag.relevance import wrong_end_of_span

    passage = "Theodric was king of the Ostrogoths from 471 to 526."
    assert wrong_end_of_span("In what year did Theodric's reign end?", passage, "471") == "end"
    assert wrong_end_of_span("In what year did Theodric's reign end?", passage, "It ended in 526.") is None
    assert wrong_end_of_span("When did his reign begin?", passage, "526") == "begin"
    assert wrong_end_of_span("When did his reign begin?", passage, "471") is None
    assert wrong_end_of_span("How long did he reign?", passage, "From 471 to 526.") is None  # no end asked


def test_a_span_from_one_year_to_another_states_its_beginning():
    from rag.relevance import qualifier_mismatch

    assert qualifier_mismatch("When did his second term begin?", "He served from 1906 to 1909 and again from 1917 until 1920.") is None
    assert qualifier_mismatch("When did his term begin?", "His term ended in 1920.") == "begin"
    assert qualifier_mismatch("When did his term end?", "He served from March 1921 to February 1932.") is None
    assert qualifier_mismatch("When did his term end?", "He served from March 1921.") == "end"


@pytest.mark.parametrize("part, kind", [
    # The sentence that asks tells the kind, not a sentence before it that sets the scene (rmk09).
    ("When I save a table, the header is one cell short. How do I make write.table pad it?", None),
    ("I installed it last week. When was version 2 released?", "time"),
])
def test_the_kind_asked_is_told_by_the_sentence_that_asks(part, kind):
    from rag.relevance import kind_asked

    assert kind_asked(part) == kind


def test_a_name_qualifying_the_role_asked_for_is_no_person_of_the_question():
    from rag.relevance import answers_part

    question = "Which Inca emperor conquered the kingdom of Chimor?"  # wkk04
    assert answers_part(question, "Topa Inca Yupanqui [1].", question)
    assert not answers_part(question, "The Inca conquered it [1].", question)
    # A name the question gives the person still is: "Sir Isaac Newton" is no answer about Newton.
    assert not answers_part("Which English king met Newton?", "Sir Isaac Newton met him.", "Which English king met Newton?")


def test_a_function_a_part_calls_is_its_own_name():
    from rag.relevance import question_parts, unanswered_parts

    question = ("Which function tells me whether seek() can change the position on a connection, and in which "
                "environment does R store what autoload() registers?")  # rmk12
    first_only = "The function isSeekable reports if seek can change the position on the connection [1]."
    assert unanswered_parts(question, first_only) == [question_parts(question)[1]]
    assert unanswered_parts(question, first_only + " What autoload() registers is stored in .AutoloadEnv [2].") == []


@pytest.mark.parametrize("rewritten, kept", [
    ("Among programmers of Python, it was popularized.", False),  # an answer guessed, not a question (pyk15)
    ("Which command must have been used to save the files?", False),  # "Octave" lost (rmk15)
    ("Which Octave command must have been used to save the files Octave reads?", True),
])
def test_a_follow_ups_rewrite_still_asks_what_it_asked(rewritten, kept):
    from rag.relevance import rewrite_keeps_question

    assert rewrite_keeps_question("Which Octave command must have been used to save the files it can read?", rewritten) is kept


def test_a_documents_publication_is_its_site_or_publisher():
    from rag.relevance import publication

    assert publication({"format": "html", "site": "Python 3.11.2 documentation"}) == "Python 3.11.2 documentation"
    assert publication({"publisher": "24 News HD", "site": None}) == "24 News HD"
    assert publication({"format": "pdf"}) == ""


def test_a_rank_is_no_amount():
    from rag.relevance import answers_part, kind_asked

    question = "Roughly how much vinyl plastic gets manufactured worldwide annually?"  # wkk09
    assert kind_asked(question) == "number"  # "roughly" before "how much"
    assert not answers_part(question, "PVC is the world's third-most widely produced synthetic polymer.", question)
    assert not answers_part(question, "It is the second-largest plastic by output.", question)
    assert answers_part(question, "About 40 million tonnes are made each year.", question)
    assert answers_part(question, "It accounts for over a third of all plastic made.", question)  # a fraction is one


def test_a_number_following_a_name_is_its_version_not_an_amount():
    from rag.relevance import answers_part

    question = "How many worker threads does ThreadPoolExecutor create by default?"  # pyf18
    assert not answers_part(question, "Passing other executors was deprecated in Python 3.8.", question)
    assert not answers_part(question, "It is described in the proposal PEP 3148.", question)
    assert answers_part(question, "Since Python 3.8 it creates 5 threads per processor.", question)
    assert answers_part(question, "Over 300 species live there.", question)  # a sentence's first word is no name


def test_a_place_is_named_not_numbered():
    from rag.relevance import unanswered_parts

    question = "In what year did Vitus Bering explore the Bering Sea? And in which country was he born?"  # wkg15
    assert unanswered_parts(question, "In 1728, Vitus Bering explored the Bering Sea.") == ["in which country was he born?"]
    assert unanswered_parts(question, "In 1728, Vitus Bering explored the Bering Sea. He was born in Denmark.") == []
