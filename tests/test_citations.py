"""Citations: markers parsed and checked, unsupported sentences removed, quotes mapped to the file."""

from __future__ import annotations

import pytest

from conftest import FakeEmbedder
from rag.chunking import chunk_document
from rag.citations import check_answer
from rag.declines import model_declined
from rag.converters.markdown import clean_fragment
from conftest import load_folder
from rag.prompts import NOT_FOUND
from rag.schema import Chunk, Document, Hit


@pytest.fixture
def documents(tiny_docs):
    return {d.source: d for d in load_folder(tiny_docs.seeds, tiny_docs.project_root)}


@pytest.fixture
def hits(documents):
    """[1] the CSF passage (mid-section), [2] the IMET passage (starts at its heading), [3] the port article."""
    chunks = [c for d in documents.values() for c in chunk_document(d, FakeEmbedder().count_tokens)]
    csf = next(c for c in chunks if c.text.startswith("Pakistan was seen"))
    imet = next(c for c in chunks if c.section == "Military training")
    port = next(c for c in chunks if "Gwadar port opened" in c.text)
    return [Hit(rank=n, chunk=c, score=0.1 / n) for n, c in enumerate([csf, imet, port], start=1)]


def check(text, hits, documents, question="What is CSF?"):
    return check_answer(text, hits, question, documents)


def test_valid_marker_is_kept_and_resolved(hits, documents):
    result = check("IMET ceased operations in 1990 [2].", hits, documents, "When did IMET cease operations?")
    assert not result.declined and result.unsupported == []
    assert result.text == "IMET ceased operations in 1990 [2]."
    [citation] = result.citations
    assert citation.n == 2 and citation.supported and 0.6 <= citation.score <= 1.0
    assert (citation.source, citation.title, citation.section) == ("seeds/aid-review.md", "A Review of Aid to Pakistan", "Military training")
    assert citation.quote == "When relations became tense in 1990, IMET ceased operations."
    assert citation.chunk_id == hits[1].chunk_id and citation.passage == hits[1].text


@pytest.mark.parametrize("marker", ["[7]", "[0]", "[4]"])
def test_marker_naming_no_passage_is_dropped(hits, documents, marker):
    result = check(f"The Gwadar port opened in 2007 {marker}.", hits, documents, "When did the Gwadar port open?")
    assert marker not in result.text
    assert result.text == "The Gwadar port opened in 2007 [3]."  # attributed to the passage that says it
    assert [c.n for c in result.citations] == [3]


def test_list_of_markers_is_parsed(hits, documents):
    result = check("CSF reimbursed Pakistan's army for operating costs [1, 2].", hits, documents)
    assert result.sentences[0].cited == [1, 2]
    assert result.text == "Coalition Support Fund (CSF) reimbursed Pakistan's army for operating costs [1][2]."
    assert [c.n for c in result.citations] == [1, 2]
    assert [c.supported for c in result.citations] == [True, False]  # [2] alone does not say it


def test_an_index_after_a_name_is_code_not_a_marker():
    from rag.markers import strip_markers

    assert strip_markers("It uses sys.argv[0] to name the program [1].") == "It uses sys.argv[0] to name the program."
    assert strip_markers("In 1990.[1][2] Then [3, 4].") == "In 1990. Then."


def test_marker_only_trailing_sentence_belongs_to_the_sentence_before(hits, documents):
    result = check("CSF reimbursed Pakistan's army for operating costs. [1]", hits, documents)
    assert len(result.sentences) == 1 and result.sentences[0].cited == [1]
    assert result.text == "Coalition Support Fund (CSF) reimbursed Pakistan's army for operating costs [1]."


def test_sentence_with_a_number_its_passage_lacks_is_removed(hits, documents):
    result = check("CSF reimbursed Pakistan's army for operating costs [1]. It paid $5 billion in 1999 [1].", hits, documents)
    assert result.text == "Coalition Support Fund (CSF) reimbursed Pakistan's army for operating costs [1]."
    assert result.unsupported == ["It paid $5 billion in 1999."]
    assert sorted(result.sentences[1].missing) == ["1999", "5"]
    assert not result.declined


def test_sentence_with_a_name_its_passage_lacks_is_removed(hits, documents):
    result = check("CSF was created by Musharraf [1].", hits, documents)
    assert result.unsupported == ["CSF was created by Musharraf."]
    assert result.sentences[0].missing == ["musharraf"]
    assert result.declined and result.text == "" and result.citations == []


def test_number_from_another_passage_does_not_count(hits, documents):
    result = check("IMET ceased operations in 2007 [2].", hits, documents, "When did IMET cease operations?")
    assert result.unsupported == ["IMET ceased operations in 2007."]  # 2007 is in [1] and [3], not in [2]


def test_unmarked_supported_sentence_is_attributed(hits, documents):
    result = check("IMET ceased operations in 1990.", hits, documents, "When did IMET cease operations?")
    assert result.sentences[0].cited == [2] and result.sentences[0].supported
    assert result.text == "IMET ceased operations in 1990 [2]."


def test_unmarked_unsupported_sentence_is_not_attributed(hits, documents):
    result = check("Lahore hosted the summit of 1974.", hits, documents, "Where was the summit?")
    assert result.sentences[0].cited == [] and not result.sentences[0].supported
    assert result.declined and result.unsupported == ["Lahore hosted the summit of 1974."]


@pytest.mark.parametrize("text", [NOT_FOUND, f" {NOT_FOUND}\n", "not in passages", "The passages do not mention the summit."])
def test_a_declining_model_is_declined(hits, documents, text):
    result = check(text, hits, documents)
    assert result.declined and result.citations == [] and result.text == ""


@pytest.mark.parametrize("text", [
    "The passage about military training does not provide information about the summit [2].",
    "The passages do not say where the summit was [1]. No information is given about its date [2].",
])
def test_a_reply_whose_every_sentence_says_the_passages_lack_it_is_declined_even_with_markers(hits, documents, text):
    assert check(text, hits, documents, "Where was the summit held?").declined


@pytest.mark.parametrize("text", [
    "Lahore hosted the summit of 1974 [1]. The passage about military training does not provide information about when IMET ceased operations [2].",
    "The reason is not explicitly stated in the given passages. The passage about military training does not mention why "
    "relations became tense in 1990 and IMET ceased operations.",
])
def test_a_reply_left_saying_only_that_the_passages_lack_it_once_the_unbacked_claims_go_is_declined(hits, documents, text):
    result = check(text, hits, documents, "Why did relations become tense in 1990?")
    assert result.declined and result.text == "" and result.citations == []


def test_a_real_answer_beside_a_sentence_about_what_is_missing_is_kept(hits, documents):
    text = "IMET ceased operations in 1990 [2]. The passages do not say why it resumed [2]."
    result = check(text, hits, documents, "When did IMET cease operations, and why did it resume?")
    assert not result.declined and "1990" in result.text


def test_an_unbacked_phrase_of_source_or_means_is_cut_from_a_backed_statement(hits, documents):
    result = check("IMET ceased operations in 1990 with funds from the State Department budget [2].", hits, documents,
                   "When did IMET cease operations?")
    assert result.text == "IMET ceased operations in 1990 [2]." and result.unsupported == ["with funds from the State Department budget."]


def test_a_cut_that_leaves_out_the_kind_of_thing_asked_is_no_answer(hits, documents):
    # Cut before "in 1991", what is left is backed but no longer says when.
    result = check("IMET, the military training programme, ceased operations in 1991 [2].", hits, documents,
                   "When did IMET cease operations?")
    assert result.declined
    # Of a compound question, the kind one part asks is enough (the other is the part check's to ask).
    result = check("IMET ceased operations in 1991 [2].", hits, documents, "When did relations become tense, and what did IMET do?")
    assert not result.declined and result.text == "IMET ceased operations [2]."


def test_model_declined_is_only_the_marker():
    assert model_declined(NOT_FOUND) and model_declined("Answer: not_in_passages")
    assert not model_declined("The port opened in 2007 [3].")


# --- quotes map to the exact text of the file -------------------------------------------------------


def raw_of(tiny_docs, source):
    return (tiny_docs.project_root / source).read_bytes().decode("utf-8")


@pytest.mark.parametrize("answer, question, quote", [
    ("IMET ceased operations in 1990 [2].", "When did IMET cease operations?",
     "When relations became tense in 1990, IMET ceased operations."),  # passage starts at a heading
    ("The United States established the Coalition Support Fund (CSF) to reimburse Pakistan's army [1].", "What is CSF?",
     "In addition, the United States established the Coalition Support Fund (CSF) to reimburse Pakistan's army for operating costs."),
    ("The Karachi port handled 40 million tonnes of cargo in 2019 [3].", "How much cargo did Karachi handle?",
     "The Karachi port handled 40 million tonnes of cargo in 2019."),
])
def test_quote_span_is_the_exact_span_of_the_source_file(tiny_docs, hits, documents, answer, question, quote):
    [citation] = check(answer, hits, documents, question).citations
    raw = raw_of(tiny_docs, citation.source)
    assert citation.quote == quote
    assert raw[citation.start:citation.end] == quote  # no markup inside these sentences
    assert citation.end - citation.start == len(quote)


def test_quote_span_across_a_line_break_of_a_crlf_file(tiny_docs, documents):
    notes = documents["seeds/cricket-notes.txt"]
    [chunk] = chunk_document(notes, FakeEmbedder().count_tokens)
    result = check("Fans celebrated the victory in the streets of the old city [1].", [Hit(1, chunk, 0.1)], documents,
                   "Where did fans celebrate?")
    [citation] = result.citations
    raw = raw_of(tiny_docs, citation.source)
    assert raw[citation.start:citation.end] == "Fans celebrated the victory\r\nin the streets of the old city."
    assert clean_fragment(raw[citation.start:citation.end]) == citation.quote


def test_quote_with_cleaned_markup_maps_to_the_marked_up_original(tiny_docs, documents):
    paper = documents["seeds/aid-review.md"]
    chunks = chunk_document(paper, FakeEmbedder().count_tokens)
    first = next(c for c in chunks if "$73 billion" in c.text)
    result = check("Pakistan received $73 billion in foreign aid between 1947 and 2001 [1].", [Hit(1, first, 0.1)], documents,
                   "How much foreign aid did Pakistan receive?")
    [citation] = result.citations
    raw = raw_of(tiny_docs, citation.source)[citation.start:citation.end]
    assert "\\$73" in raw and "$73" in citation.quote
    assert clean_fragment(raw) == citation.quote


def test_without_the_document_the_citation_points_at_the_whole_passage(hits):
    [citation] = check_answer("IMET ceased operations in 1990 [2].", hits, "When did IMET cease operations?", {}).citations
    assert (citation.start, citation.end) == (hits[1].start, hits[1].end)


# --- sentence openers and paragraph-bounded quotes ------------------------------------------------


@pytest.mark.parametrize("opener", ["Also", "However", "Yes", "Overall"])
def test_a_sentence_opening_word_is_not_a_name(hits, documents, opener):
    result = check(f"{opener}, IMET ceased operations in 1990 [2].", hits, documents, "When did IMET cease operations?")
    assert not result.declined and result.unsupported == []


def test_quote_does_not_run_across_paragraphs(hits, documents):
    [citation] = check("The Gwadar port opened in 2007 [3].", hits, documents, "When did the Gwadar port open?").citations
    assert citation.quote == "The Gwadar port opened in 2007 with Chinese funding."


# --- acronyms and figures the question asks about ----------------------------------------------------


def test_an_abbreviation_the_passages_define_is_spelled_out_once():
    from rag.acronyms import expand_acronyms

    passages = "The United States established the Coalition Support Fund (CSF) to reimburse costs."
    assert expand_acronyms("CSF paid costs [1]. CSF grew [1].", passages) == "Coalition Support Fund (CSF) paid costs [1]. CSF grew [1]."
    assert expand_acronyms("The Coalition Support Fund (CSF) paid [1].", passages) == "The Coalition Support Fund (CSF) paid [1]."
    assert expand_acronyms("IMET ended [1].", passages) == "IMET ended [1]."  # not defined there: unchanged


def test_a_year_the_question_asks_about_that_no_cited_passage_has_means_no_answer(hits, documents):
    result = check("CSF reimbursed Pakistan's army for operating costs [1].", hits, documents, "What did CSF pay in 2023?")
    assert result.declined and result.citations == []


def test_a_name_from_the_question_that_no_passage_mentions_is_not_supported(hits, documents):
    result = check("The Kerry-Lugar-Berman Act reimbursed Pakistan's army for operating costs [1].", hits, documents,
                   "What did the Kerry-Lugar-Berman Act provide?")
    assert result.declined and result.unsupported


# --- a reply of markers alone ("[1]") ------------------------------------------------------------


def _title_page_hit():
    text = ("Journal of Aid Studies, Volume 3, 2021\n"
            "A REVIEW OF AID TO PAKISTAN\n"
            "Jane Doe, John Roe")
    chunk = Chunk(chunk_id="title-page", source="seeds/aid-review.md", title="A Review of Aid to Pakistan",
                  section="", start=0, end=len(text), text=text, kind="front_matter")
    return Hit(rank=1, chunk=chunk, score=0.1)


def test_markers_alone_answer_with_the_cited_passages_own_line():
    result = check_answer("[1]", [_title_page_hit()], "Which authors besides Jane Doe wrote the review of aid to Pakistan?", {})
    assert result.text == "Jane Doe, John Roe [1]."
    assert [c.n for c in result.citations] == [1] and result.citations[0].quote == "Jane Doe, John Roe"


def test_markers_alone_ignore_the_words_that_name_the_document():
    # The question names the paper by its title; without discounting those words the title line
    # (six shared words) would beat the journal line (one: "journal").
    result = check_answer("[1]", [_title_page_hit()], "In which journal was the review of aid to Pakistan published?", {})
    assert result.text == "Journal of Aid Studies, Volume 3, 2021 [1]."
    assert result.citations[0].supported


def test_markers_alone_quote_the_passage_matching_the_question_best_whichever_they_name():
    rule = _hit("To declare an encoding, a comment line should be added as the first line of the file.")
    exception = Hit(2, Chunk(chunk_id="c2", source="doc.md", title="", section="", start=0, end=120,
                             text="One exception is when the source file starts with a shebang line. "
                                  "In this case, the declaration goes on the second line."), 0.5)
    question = "If a source file starts with a shebang line, on which line does the encoding declaration go?"
    result = check_answer("[1]", [rule, exception], question, {})
    assert "second line" in result.text and [c.n for c in result.citations] == [2]
    tie = check_answer("[2]", [exception, exception], question, {})
    assert [c.n for c in tie.citations] == [2]  # a tie goes to the passage the marker names
    compound = check_answer("[1]", [rule, exception], f"{question[:-1]}, and what is the default encoding?", {})
    assert [c.n for c in compound.citations] == [1]  # a compound question's parts have their own passages


def test_markers_alone_quote_the_sentence_holding_the_kind_of_thing_asked():
    hit = _hit("Check carefully whether the bug is with R, or a contributed package. "
               "A report can be generated using the function bug.report().")
    result = check_answer("[1]", [hit], "Which function can I call to generate a bug report for R or for a contributed package?", {})
    assert "bug.report()" in result.text and not result.declined


def test_markers_with_other_text_are_not_replaced_by_a_quote():
    result = check_answer("It was a journal [1].", [_title_page_hit()], "In which journal was it published?", {})
    assert "Volume 3" not in result.text


# --- an answer that only restates the question ------------------------------------------------------


def test_an_answer_restating_the_question_is_replaced_by_the_passage_sentence(hits, documents):
    result = check("IMET ceased operations [2].", hits, documents, "When did IMET cease operations?")
    assert not result.declined
    assert result.text == "When relations became tense in 1990, IMET ceased operations [2]."
    assert result.citations[0].supported


def test_a_restating_answer_with_no_matching_passage_sentence_is_declined(hits, documents):
    result = check("The trophy was won in the championship [1].", hits, documents, "Who won the championship trophy?")
    assert result.declined and result.citations == []


def test_for_a_yes_no_question_the_restatement_is_the_answer(hits, documents):
    result = check("IMET ceased operations [2].", hits, documents, "Did IMET cease operations?")
    assert result.text == "IMET ceased operations [2]."


def test_an_unsupported_ending_is_cut_and_reported(hits, documents):
    result = check("IMET ceased operations in 1990, which ended all cooperation for good [2].", hits, documents,
                   "When did IMET cease operations?")
    assert result.text == "IMET ceased operations in 1990 [2]."
    assert result.unsupported == ["which ended all cooperation for good."]
    assert result.citations[0].supported


def test_a_sentence_without_a_backed_part_is_removed_whole(hits, documents):
    result = check("IMET ceased operations in 2007, when the Gwadar port was sold [2].", hits, documents,
                   "When did IMET cease operations?")
    assert result.declined  # "IMET ceased operations in 2007" is not backed either: 2007 is not in [2]


def test_an_abbreviation_of_a_name_the_passage_spells_out_is_backed(hits, documents):
    # [1] says "the United States established the Coalition Support Fund (CSF)"; "US" is not in it.
    result = check("The US set up the Coalition Support Fund to reimburse Pakistan's army [1].", hits, documents)
    assert result.unsupported == [] and result.citations[0].supported


# --- quoting when the model declined ----------------------------------------------------------------


def test_a_sentence_nearly_restating_the_question_is_quoted(hits, documents):
    from rag.quoting import quote_answer

    result = quote_answer(hits, "When did relations become tense and IMET cease operations?", documents)
    assert not result.declined
    assert result.text == "When relations became tense in 1990, IMET ceased operations [2]."
    assert result.citations[0].supported and result.citations[0].quote == "When relations became tense in 1990, IMET ceased operations."


def test_no_quote_when_a_sentence_holds_only_some_of_the_question(hits, documents):
    from rag.quoting import quote_answer

    # The IMET sentence shares IMET, trained and officers: 3 of 6 question stems.
    assert quote_answer(hits, "How many IMET officers trained in Pakistan in 2020?", documents).declined


def test_a_number_of_the_question_may_be_in_the_cited_document_s_title():
    from rag.citations import check_answer
    from rag.schema import Chunk, Hit

    chunk = Chunk("c1", "whatsnew.html", "What's New In Python 3.11", "New Features",
                  0, 80, "Added a -P command line option, which disables prepending the script directory.")
    hits = [Hit(1, chunk, 1.0)]
    question = "Which option added in 3.11 disables prepending the script directory?"
    checked = check_answer("The -P command line option disables prepending the script directory [1].", hits, question, {})
    assert not checked.declined and checked.citations[0].supported
    other = [Hit(1, Chunk("c1", "x.html", "Other notes", "", 0, 80, chunk.text), 1.0)]
    assert check_answer("The -P command line option disables prepending the script directory [1].", other, question, {}).declined


def test_a_name_or_number_of_the_cited_document_s_title_supports_a_sentence():
    """A passage of the R FAQ need not repeat "R FAQ" for "The R FAQ thanks ..." to be backed; the
    same sentence from a passage of another document is not."""
    from rag.citations import check_answer
    from rag.schema import Chunk, Hit

    text = "Thanks to Martin Maechler, there are several mailing lists devoted to R."
    question = "Whom does the R FAQ thank for R's mailing lists?"
    answer = "The R FAQ thanks Martin Maechler for R's mailing lists [1]."
    faq = [Hit(1, Chunk("c1", "R-FAQ.pdf", "R FAQ", "2.9 What mailing lists exist for R?", 0, len(text), text), 1.0)]
    checked = check_answer(answer, faq, question, {})
    assert not checked.declined and checked.citations[0].supported
    other = [Hit(1, Chunk("c1", "R-intro.pdf", "An Introduction to R", "Mailing lists", 0, len(text), text), 1.0)]
    assert check_answer(answer, other, question, {}).declined


def test_a_section_heading_or_contents_line_is_never_quoted_as_the_answer():
    """"2.2 Fixed-width-format files" holds the question's words but says where the answer is,
    not what it is; the sentence under it answers."""
    from rag.quoting import quote_answer
    from rag.schema import Chunk, Hit

    text = ("2.2 Fixed-width-format files\n\nFunction read.fwf provides a simple way to read fixed-width-format "
            "files, specifying a vector of field widths.")
    toc = "2.2 Fixed-width-format files . . . . . . . . . . . . 8"
    hits = [Hit(1, Chunk("c1", "R-data.pdf", "R Data Import/Export", "2.2 Fixed-width-format files", 0, len(text), text), 1.0),
            Hit(2, Chunk("c2", "R-data.pdf", "R Data Import/Export", "", 0, len(toc), toc), 0.5)]
    answer = quote_answer(hits, "What about fixed-width-format files?", {})
    assert not answer.declined and answer.text.startswith("Function read.fwf provides")
    assert quote_answer(hits[1:], "What about fixed-width-format files?", {}).declined


def test_an_answer_that_is_only_a_heading_is_not_supported_unless_a_heading_is_asked_for():
    from rag.citations import check_answer
    from rag.schema import Chunk, Hit

    text = "2.2 Fixed-width-format files\n\nFunction read.fwf provides a simple way to read such files."
    hits = [Hit(1, Chunk("c1", "R-data.pdf", "R Data Import/Export", "2.2 Fixed-width-format files", 0, len(text), text), 1.0)]
    heading = "2.2 Fixed-width-format files [1]."
    checked = check_answer(heading, hits, "How do I read a file whose fields sit in fixed-width columns?", {})
    assert checked.declined and checked.sentences[0].missing == ["a heading says where the answer is, not what it is"]
    assert not check_answer(heading, hits, "Which section of the manual covers fixed-width-format files?", {}).declined


def test_an_answer_that_is_a_document_s_title_can_be_the_answer():
    """An encyclopedia article is titled by its subject: "Claude Shannon" answers who."""
    from rag.citations import check_answer
    from rag.schema import Chunk, Hit

    text = 'Claude Shannon\n\nClaude Elwood Shannon was known as the "father of information theory".'
    hits = [Hit(1, Chunk("c1", "claude-shannon.md", "Claude Shannon", "Claude Shannon", 0, len(text), text), 1.0)]
    checked = check_answer("Claude Shannon [1].", hits, "Who is considered the originator of information theory?", {})
    assert not checked.declined and checked.citations[0].supported


def test_a_quoted_sentence_that_refers_back_is_quoted_with_the_sentence_it_refers_to():
    from rag.sentences import with_referent

    passage = "Notes on exceptions\nThe add_note() method is added to BaseException. It can be used to add context."
    it = passage.index("It can")
    assert passage[slice(*with_referent(passage, it, len(passage)))] == "The add_note() method is added to BaseException. It can be used to add context."
    first = passage.index("The add_note")
    assert with_referent(passage, first, it - 1) == (first, it - 1)  # names its subject itself
    heading_then_it = "Notes\nIt can be used to add context."
    assert with_referent(heading_then_it, 6, len(heading_then_it)) == (6, len(heading_then_it))  # a heading is no referent


def test_a_list_of_names_does_not_answer_who_holds_a_role():
    text = "Authors: Ali, Muhammad Sarmad Waqar, Malik Danial Ishtiaq."
    hit = Hit(1, Chunk(chunk_id="c1", source="journal.md", title="ASIO Journal", section="", start=0, end=len(text), text=text), 1.0)
    checked = check_answer("The editor of the ASIO journal is Muhammad Sarmad Waqar [1].", [hit], "Who is the editor of the ASIO journal?", {})
    assert checked.declined and "the passage does not say who the editor is" in checked.sentences[0].missing


@pytest.mark.parametrize("question, sentence, title, says", [
    # Names and a year, but nothing of "born": not an answer, however the model pointed at it.
    ("In what year was Ingmar Bergman born?", "The Seventh Seal is a 1957 film written and directed by Ingmar Bergman.",
     "The Seventh Seal", False),
    ("Where is TIBCO Software headquartered?", "S-Plus is a version of S sold by TIBCO Software Inc.", "R FAQ", False),
    ("When did IMET cease operations?", "IMET ceased operations in 1990.", "", True),
    ("Which authors besides Jane Doe wrote the review?", "Jane Doe, John Roe", "The Review", True),  # a byline names them
    ("What is CSF?", "The Coalition Support Fund (CSF) reimbursed the army.", "", True),  # asks about a name only
])
def test_a_quoted_sentence_must_say_something_of_what_is_asked(question, sentence, title, says):
    from rag.sentences import says_what_is_asked

    assert says_what_is_asked(question, sentence, title) is says


def test_a_quoted_sentence_that_sets_up_a_case_is_quoted_with_the_sentence_that_takes_it_up():
    from rag.sentences import with_context

    passage = ("The declaration goes on the first line. One exception is a file that starts with a shebang line. "
               "In this case, the declaration goes on the second line. Editors read it too.")
    case = passage.index("One exception")
    sequel_end = passage.index(" Editors")
    assert passage[slice(*with_context(passage, case, passage.index(" In this")))].endswith("goes on the second line.")
    assert with_context(passage, case, passage.index(" In this"))[1] == sequel_end
    first_end = passage.index(" One exception")
    assert with_context(passage, 0, first_end) == (0, first_end)  # the next sentence does not take it up
    across = "A file may start with a shebang line.\nIn this case, see below."
    assert with_context(across, 0, across.index("\n")) == (0, across.index("\n"))  # not across a paragraph


def _hit(text: str, title: str = "", section: str = "") -> Hit:
    return Hit(1, Chunk(chunk_id="c1", source="doc.md", title=title, section=section, start=0, end=len(text), text=text), 1.0)


def test_a_number_the_passage_spells_out_backs_its_digits():
    hit = _hit("The heads account for three-eighths of the size of the whole statue.", title="Moai")
    checked = check_answer("3/8 of the size of the whole statue [1]", [hit], "What share of a moai's size is its head?", {})
    assert not checked.declined
    assert check_answer("5/8 of the size of the whole statue [1]", [hit], "What share of a moai's size is its head?", {}).declined


def test_a_name_in_the_passages_title_backs_an_answer_naming_it():
    hit = _hit("The term Kafkaesque has entered the lexicon to describe situations like those in his writings.", title="Franz Kafka")
    question = "Which writer's name gave rise to an adjective for nightmarish situations?"
    assert not check_answer("Kafka [1]", [hit], question, {}).declined
    assert check_answer("Conrad [1]", [hit], question, {}).declined


def test_a_number_of_one_part_of_a_compound_question_does_not_decline_the_other_part():
    hit = _hit("By default, Python source files are treated as encoded in UTF-8.")
    question = "What encoding do source files use by default, and which Unicode version does Python 3.11 support?"
    assert not check_answer("UTF-8 [1].", [hit], question, {}).declined
    assert check_answer("UTF-8 [1].", [hit], "Which encoding do source files use in Python 3.11?", {}).declined


def test_the_quoted_sentence_is_the_one_holding_the_answers_number():
    text = ("Initiatives such as the Strategic Stability Dialogue have provided a platform for talks. "
            "The dialogue, revived in 2022, has been instrumental.")
    checked = check_answer("The Strategic Stability Dialogue was first launched in 2022 [1].", [_hit(text)],
                           "When was the Strategic Stability Dialogue first launched?", {})
    assert checked.declined and "the passage does not say 'first'" in checked.sentences[0].missing


def test_a_sentence_that_only_introduces_what_follows_is_no_answer():
    hit = _hit("The Unicode standard contains a lot of tables listing characters and their code points:\n- 0041 A")
    question = "Which standard module compares how long two snippets take to run?"
    checked = check_answer("The Unicode standard contains a lot of tables listing characters and their code points: [1].", [hit], question, {})
    assert checked.declined and "it introduces what follows, and says nothing itself" in checked.sentences[0].missing


def test_a_marker_standing_as_the_subject_is_replaced_by_the_passage_sentence_it_points_at():
    hit = _hit("Standard Compliance\n\nThe format is defined below. JSON, specified by RFC 7159 (which obsoletes RFC 4627) "
               "and by ECMA-404, is a lightweight data interchange format (not a subset of JavaScript [1] ).")
    question = "Which RFC specifies JSON, and which earlier RFC does it obsolete?"
    checked = check_answer("[1] specifies JSON, and obsoletes RFC 4627.", [hit], question, {})
    assert not checked.declined and "RFC 7159" in checked.text  # the subject the reply left out
    assert "JavaScript) [1]." in checked.text  # the passage's own footnote mark is not shown as a citation
    assert "RFC 7159" not in check_answer("It specifies JSON, and obsoletes RFC 4627 [1].", [hit], question, {}).text


def test_a_number_taken_from_another_statement_of_the_passage_is_caught():
    hit = _hit("The Portuguese explorer Aleixo Garcia was the first European to reach the Inca Empire in 1524. "
               "Later, in 1532, the Spanish began the conquest of the Inca Empire, and by 1572 the last Inca state was conquered.")
    question = "When did the Spanish begin their conquest of the Inca Empire?"
    moved = check_answer("The Spanish began their conquest of the Inca Empire in 1524 [1].", [hit], question, {})
    assert moved.declined and "the passage gives 1524 for another statement" in moved.sentences[0].missing
    assert not check_answer("The Spanish began their conquest of the Inca Empire in 1532 [1].", [hit], question, {}).declined
    both = "The Spanish began their conquest of the Inca Empire in 1524 and by 1572 the last Inca state was conquered [1]."
    assert check_answer(both, [hit], question + " And by when was the last Inca state conquered?", {}).declined
    # Where no passage sentence says what the answer says, the number is not compared with anything:
    assert not check_answer("Aleixo Garcia reached it in 1524 [1].", [hit], "Who first reached the Inca Empire?", {}).declined


def test_a_number_given_by_a_sentence_saying_enough_of_the_same_is_not_moved():
    # The closest sentence by words lists other numbers (bases); the one giving 4300 says the same
    # thing in fewer of the question's words (py03, once its passage began with the whole sentence).
    hit = _hit("Converting between int and str in bases other than 2, 4, 8, 16, or 32 now raises a ValueError if the "
               "number of digits in string form is above a limit. This limit can be configured. "
               "The default limit is 4300 digits in string form.")
    question = "What is the default limit on the number of digits when converting between int and str?"
    answer = "The default limit on the number of digits when converting between int and str is 4300 digits in string form [1]."
    assert not check_answer(answer, [hit], question, {}).declined


def test_a_year_the_passage_sets_before_another_name_is_not_that_names():
    hit = _hit("Gabriel García Márquez was a Colombian writer. Considered one of the most significant authors of "
               "the 20th century, he was awarded the 1972 Neustadt International Prize for Literature and the 1982 "
               "Nobel Prize in Literature.")
    question = "In what year did Gabriel García Márquez win the Nobel Prize in Literature?"
    swapped = check_answer("In 1972, Gabriel García Márquez won the Nobel Prize in Literature [1].", [hit], question, {})
    assert swapped.declined and "the passage gives 1972 for another statement" in swapped.sentences[0].missing
    assert not check_answer("In 1982, Gabriel García Márquez won the Nobel Prize in Literature [1].", [hit], question, {}).declined
    both = "He won the 1972 Neustadt International Prize and the 1982 Nobel Prize in Literature [1]."
    assert not check_answer(both, [hit], question, {}).declined


def test_a_number_is_compared_with_every_sentence_as_close_to_the_answer():
    # Two passage sentences share as many words with the answer; the first gives its years.
    hit = _hit("The Aswan High Dam was built between 1960 and 1970 across the Nile. "
               "Like the Aswan Low Dam, which had been completed in 1902, the High Dam has changed Egypt.")
    question = "When was construction of the Aswan High Dam begun, and when was it finished?"
    assert not check_answer("The Aswan High Dam was begun in 1960 and finished in 1970 [1].", [hit], question, {}).declined


def test_a_sentence_cut_off_where_it_continues_is_no_answer():
    hit = _hit("For backward compatibility, this macro can be used: #if PY_VERSION_HEX < 0x030900A4 && !defined(PYPY_VERSION)")
    question = "Which version of SciPy first supported Python 3.11?"
    checked = check_answer("For backward compatibility, this macro can be used: #if PY_VERSION_HEX < 0x030900A4 && [1].", [hit], question, {})
    assert checked.declined and "it stops in the middle of what it says" in checked.sentences[0].missing


def test_a_clause_cut_from_a_sentence_stands_when_another_passage_backs_it():
    notes = _hit("The original notes were written by Bill Venables when at the University of Adelaide.")
    r = Hit(2, Chunk(chunk_id="c2", source="faq.md", title="R FAQ", section="", start=0, end=80,
                     text="R was initially written at the Department of Statistics of the University of Auckland."), 1.0)
    question = "At which university were the notes written, and at which university was R first written?"
    checked = check_answer("The notes were written at the University of Adelaide, and R was first written at the "
                           "Department of Statistics of the University of Auckland [1].", [notes, r], question, {})
    assert "University of Adelaide [1]." in checked.text and "Auckland [2]." in checked.text
    # A clause no passage backs is still removed:
    checked = check_answer("The notes were written at the University of Adelaide, and R was first written at the "
                           "University of Otago [1].", [notes, r], question, {})
    assert "Otago" not in checked.text and "Adelaide [1]." in checked.text


def test_first_backs_an_ordinal_but_not_an_amount():
    hit = _hit("This is usually not appreciated on a first glance at Python. The second edition came out later.")
    question = "How many concrete tzinfo classes does the datetime module supply?"
    assert check_answer("The datetime module supplies 1 concrete tzinfo class [1].", [hit], question, {}).declined
    from rag.citations import _support

    assert _support("The 2nd edition came out later.", [hit.text], "Which edition came out later?")[1] == []
    assert _support("1 edition came out later.", [hit.text], "Which edition came out later?")[1] == ["1"]


def test_a_number_the_question_gives_is_not_a_claim_of_the_answer():
    hit = _hit("From R 4.2.0, the libcurl method is the default on all platforms. "
               "It has been used since R 3.3.0 everywhere but Windows, where the default method wininet also supported HTTPS.")
    question = "Before R 4.2.0 made libcurl the default everywhere, which download method was the default on Windows?"
    answer = "The default download method on Windows before R 4.2.0 made libcurl the default everywhere was wininet [1]."
    assert not check_answer(answer, [hit], question, {}).declined


def test_a_number_with_a_zero_fraction_is_the_whole_number():
    hit = _hit("sqlite3.connect(database, timeout=5.0): how many seconds the connection should wait if the database is locked.")
    question = "How many seconds does a sqlite3 connection wait when the database is locked?"
    assert not check_answer("The connection waits 5 seconds [1].", [hit], question, {}).declined


def test_a_number_of_the_passages_heading_backs_the_answer():
    hit = _hit("See Transaction control for more. If True, the connection is checked.",
               section="sqlite3.connect(database, timeout=5.0, detect_types=0)")
    question = "How many seconds does a sqlite3 connection wait when the database is locked?"
    assert not check_answer("The connection waits for 5 seconds [1].", [hit], question, {}).declined
    assert check_answer("The connection waits for 7 seconds [1].", [hit], question, {}).declined


def test_each_part_of_a_compound_question_is_about_its_own_subject():
    csv = _hit("If csvfile is a file object, it should be opened with newline=''.", title="csv")
    bom = _hit("For reading such files, use the 'utf-8-sig' codec to skip the mark.", title="Unicode HOWTO")
    question = ("When opening a file for the csv module, what newline argument should I pass, and which codec "
                "should I use to read a UTF-8 file that starts with a byte-order mark?")
    checked = check_answer("It should be opened with newline='' [1]. Use the 'utf-8-sig' codec [2].", [csv, bom], question, {},
                           known=lambda name: True)
    assert [s.supported for s in checked.sentences] == [True, True]
    # A part that refers back is about what the whole question names.
    other = _hit("The museum opened in 1931.", title="River museum")
    asked = "Who founded the Aswan Dam, and when did it open?"
    assert check_answer("It opened in 1931 [1].", [other], asked, {}, known=lambda name: True).declined


def test_an_irregular_form_of_the_questions_verb_is_no_unsupported_claim():
    # "got" for the question's "get": the only words besides the question's are the figure and the
    # verb's other form, so the figure the passage states is the answer (it was 1 of 2 words unsupported).
    passage = _hit("Compilation is now 20-30% quicker in version 7. This matters for large projects.")
    result = check_answer("Compilation got quicker by 20-30% in version 7 [1].", [passage],
                          "By how much did compilation get quicker in version 7?", {})
    assert not result.declined and result.citations[0].supported


def test_what_the_asker_saw_before_asking_is_no_figure_asked_about():
    # "... and got 0 back. How should I ...?": the 0 is what happened, not what is asked (rmk07).
    hit = _hit('What you really want is obtained by quoting: D(expression(x^2), "x") gives 2 * x.')
    question = 'I called D(x^2, "x") and got 0 back. How should I hand the formula to D?'
    assert not check_answer('Call D(expression(x^2), "x") [1].', [hit], question, {}).declined
    # A figure of the asking sentence itself still has to be in the cited passage.
    assert check_answer('Call D(expression(x^2), "x") [1].', [hit], "How do I differentiate it in version 7?", {}).declined


def test_a_passage_is_about_the_site_or_publisher_its_document_belongs_to():
    # A tutorial page that never writes "Python" is still a page of the Python documentation (pyk01).
    hit = _hit("Annotations are stored in the __annotations__ attribute of the function as a dictionary.",
               title="4. More Control Flow Tools")
    question = "In which attribute does Python keep a function's annotations?"
    answer = "Annotations are stored in the __annotations__ attribute [1]."
    page = Document(source="doc.md", title=hit.title, text=hit.text, offsets=list(range(len(hit.text))),
                    metadata={"site": "Python 3.11.2 documentation"})
    assert not check_answer(answer, [hit], question, {"doc.md": page}, known=lambda name: True).declined
    assert check_answer(answer, [hit], question, {}, known=lambda name: True).declined  # without it: about nothing named
    # The site's name asks for nothing more, and stands for no other name the question gives (py29).
    changed = _hit("Changed in version 3.11: Previously, this method only supported the format YYYY-MM-DD.", title="datetime")
    quoted = "Changed in version 3.11: Previously, this method only supported the format YYYY-MM-DD [1]."
    assert check_answer(quoted, [changed], "Which version of SciPy first supported Python 3.11?", {"doc.md": page},
                        known=lambda name: True).declined
    assert not check_answer(quoted, [changed], "What changed in Python 3.11 about this method?", {"doc.md": page},
                            known=lambda name: True).declined


def test_a_bare_answer_needs_a_passage_sentence_that_says_what_is_asked():
    # "PEP 673 [1]" for which PEP brought f-strings, from "See PEP 673 for more details." (pyk19).
    hit = _hit("See PEP 673 for more details. The new LiteralString annotation marks literal string types.")
    question = "Which PEP introduced formatted string literals?"
    assert check_answer("PEP 673 [1].", [hit], question, {}).declined
    backed = _hit("PEP 498 introduced formatted string literals to the language.")
    assert not check_answer("PEP 498 [1].", [backed], question, {}).declined


def test_a_sentence_written_again_and_again_is_shown_once():
    hit = _hit("In 1728, Vitus Bering first systematically explored the Bering Sea.")
    looped = " ".join(["In 1728, Vitus Bering first systematically explored the Bering Sea [1]."] * 5)
    checked = check_answer(looped, [hit], "In what year did Vitus Bering first explore the Bering Sea?", {})
    assert checked.text.count("Vitus Bering") == 1 and len(checked.sentences) == 1


def test_a_bare_answer_is_judged_by_any_passage_sentence_holding_it():
    # The title line "Arcturus" holds the name as well; the sentence after it says what is asked (wkf08).
    hit = _hit("Arcturus\n\nArcturus is a red giant star, the brightest star in the northern celestial hemisphere.",
               title="Arcturus")
    question = "Which star outshines all others in the sky north of the celestial equator?"
    assert not check_answer("Arcturus [1].", [hit], question, {}).declined
