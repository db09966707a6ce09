"""Retrieval: fusion known answers on hand-made rankings, input checks, and search on the tiny index."""

from __future__ import annotations

import pytest

from conftest import MemoryStore
from rag.errors import InvalidInputError
from rag.retrieval import (KIND_WEIGHTS, MAX_QUESTION_CHARS, NAMED_DOCUMENT_BOOST, Retriever, distinctive_metadata_words,
                           search_parts, search_focus, validate_k, validate_question)
from rag.schema import Chunk

OPED = "seeds/op-ed.txt"
PAPER = "seeds/paper.md"
METADATA = {
    OPED: {"title": "Pak-US ties and global security", "kind": "opinion article (op-ed)", "publisher": "24 News HD"},
    PAPER: {"title": "Pakistan-US partnership: a review paper", "kind": "review paper (journal article)", "publisher": "ASIO Journal"},
}


def make_chunk(i: int, text: str, *, kind: str = "content", source: str = PAPER) -> Chunk:
    return Chunk(chunk_id=f"c{i}", source=source, title=METADATA[source]["title"], section="", start=i * 100,
                 end=i * 100 + len(text), text=text, kind=kind)


def retriever_of(chunks: list[Chunk], rrf_k: int = 60) -> Retriever:
    return Retriever(MemoryStore(chunks), embedder=None, document_metadata=METADATA, rrf_k=rrf_k)


# Distinct vocabularies, so that no chunk is a near duplicate of another unless a test wants one.
TEXTS = [
    "The Coalition Support Fund reimbursed army operating costs.",
    "Gwadar port opened with Chinese funding.",
    "IMET ceased operations during tense relations.",
    "Cricket fans celebrated a championship trophy.",
    "Dredging deepened the harbour channel.",
]


def rrf(*ranks: int, k: int = 60) -> float:
    return sum(1.0 / (k + r) for r in ranks)


# --- fusion ------------------------------------------------------------------------------------------


def test_reciprocal_rank_fusion_known_answer():
    retriever = retriever_of([make_chunk(i, t) for i, t in enumerate(TEXTS)])
    dense = [("c0", 0.9), ("c1", 0.8), ("c2", 0.7)]
    lexical = [("c2", 5.0), ("c0", 3.0)]
    hits = retriever.fuse(dense, lexical, k=5)
    assert [h.chunk_id for h in hits] == ["c0", "c2", "c1"]
    assert [h.rank for h in hits] == [1, 2, 3]
    assert [h.score for h in hits] == pytest.approx([rrf(1, 2), rrf(3, 1), rrf(2)])


def test_component_scores_and_ranks_are_kept():
    retriever = retriever_of([make_chunk(i, t) for i, t in enumerate(TEXTS)])
    hits = {h.chunk_id: h for h in retriever.fuse([("c0", 0.9), ("c1", 0.8), ("c2", 0.7)], [("c2", 5.0), ("c0", 3.0)], k=5)}
    assert (hits["c0"].dense_rank, hits["c0"].dense_score, hits["c0"].lexical_rank, hits["c0"].lexical_score) == (1, 0.9, 2, 3.0)
    assert (hits["c2"].dense_rank, hits["c2"].lexical_rank, hits["c2"].lexical_score) == (3, 1, 5.0)
    assert hits["c1"].lexical_score is None and hits["c1"].lexical_rank is None
    data = hits["c1"].to_dict()
    assert data["dense_score"] == 0.8 and data["lexical_score"] is None and data["dense_rank"] == 2


def test_rrf_constant_is_used():
    retriever = retriever_of([make_chunk(i, t) for i, t in enumerate(TEXTS)], rrf_k=1)
    hits = retriever.fuse([("c0", 0.9), ("c1", 0.8)], [("c1", 2.0)], k=5)
    assert [h.chunk_id for h in hits] == ["c1", "c0"]
    assert [h.score for h in hits] == pytest.approx([1 / 3 + 1 / 2, 1 / 2])


def test_ties_are_broken_by_index_order_and_k_is_respected():
    retriever = retriever_of([make_chunk(i, t) for i, t in enumerate(TEXTS)])
    hits = retriever.fuse([("c3", 0.5), ("c1", 0.5)], [("c1", 1.0), ("c3", 1.0)], k=1)
    assert [h.chunk_id for h in hits] == ["c1"]  # same fused score as c3; lower index first


def test_empty_rankings_give_no_hits():
    assert retriever_of([make_chunk(0, TEXTS[0])]).fuse([], [], k=3) == []


def test_near_duplicate_of_a_better_hit_is_dropped():
    duplicate = "The Coalition Support Fund reimbursed army operating costs fully."  # 7 of its 8 words in c0
    chunks = [make_chunk(0, TEXTS[0]), make_chunk(1, duplicate), make_chunk(2, TEXTS[2])]
    hits = retriever_of(chunks).fuse([("c0", 0.9), ("c1", 0.89), ("c2", 0.5)], [], k=2)
    assert [h.chunk_id for h in hits] == ["c0", "c2"]
    assert [h.rank for h in hits] == [1, 2]


def test_partly_overlapping_passages_are_both_kept():
    related = "The Coalition Support Fund paid for fuel, patrols and air traffic control in the borderland."
    hits = retriever_of([make_chunk(0, TEXTS[0]), make_chunk(1, related)]).fuse([("c0", 0.9), ("c1", 0.8)], [], k=2)
    assert [h.chunk_id for h in hits] == ["c0", "c1"]


@pytest.mark.parametrize("kind", ["front_matter", "references"])
def test_front_matter_and_references_rank_below_content_that_matches_as_well(kind):
    chunks = [make_chunk(0, TEXTS[0], kind=kind), make_chunk(1, TEXTS[1])]
    hits = retriever_of(chunks).fuse([("c0", 0.9), ("c1", 0.8)], [("c0", 4.0), ("c1", 3.0)], k=2)
    assert [h.chunk_id for h in hits] == ["c1", "c0"]
    assert hits[1].score == pytest.approx(rrf(1, 1) * KIND_WEIGHTS[kind])
    assert hits[0].score == pytest.approx(rrf(2, 2))


def test_named_document_is_boosted():
    chunks = [make_chunk(0, TEXTS[0], source=PAPER), make_chunk(1, TEXTS[1], source=OPED)]
    retriever = retriever_of(chunks)
    dense, lexical = [("c0", 0.9), ("c1", 0.8)], [("c0", 4.0), ("c1", 3.0)]
    assert [h.chunk_id for h in retriever.fuse(dense, lexical, k=2)] == ["c0", "c1"]
    named = retriever.named_documents("What does the op-ed say about Gwadar?")
    assert named == {OPED}
    hits = retriever.fuse(dense, lexical, k=2, named_documents=named)
    assert [h.chunk_id for h in hits] == ["c1", "c0"]
    assert hits[0].score == pytest.approx(rrf(2, 2) * NAMED_DOCUMENT_BOOST)


def test_passages_an_answer_could_come_from_rank_first():
    chunks = [make_chunk(0, "Connections replace file names in the sense of Chambers and Ripley."),
              make_chunk(1, "Text connections are another source of input."),
              make_chunk(2, "Brian Ripley is the author of the support for connections."),
              make_chunk(3, "Gwadar port opened with Chinese funding.")]
    retriever = retriever_of(chunks)
    hits = retriever.fuse([(c.chunk_id, 0.9 - i / 10) for i, c in enumerate(chunks)], [], k=4)
    # "Who wrote ...?": a passage that says nothing of writing (no "wrote", "written", "author") cannot back the answer.
    ordered = retriever.fitting_first("Who wrote R's support for connections?", hits)
    assert [h.chunk_id for h in ordered] == ["c2", "c0", "c1", "c3"] and [h.rank for h in ordered] == [1, 2, 3, 4]
    # A passage about nothing the question names ranks after those that name it; order within each group is kept.
    ordered = retriever.fitting_first("When did Gwadar open?", hits)
    assert [h.chunk_id for h in ordered] == ["c3", "c0", "c1", "c2"]
    assert retriever.fitting_first("What are connections?", hits) == hits  # nothing to prefer


def test_named_documents_use_only_words_no_other_document_shares():
    words = distinctive_metadata_words(METADATA)
    assert "pakistan" not in words[OPED] | words[PAPER]  # in both titles: names neither
    assert {"op-ed", "opinion"} <= words[OPED] and {"review", "paper", "journal"} <= words[PAPER]
    retriever = retriever_of([make_chunk(0, TEXTS[0])])
    assert retriever.named_documents("According to the review paper, what is CSF?") == {PAPER}
    assert retriever.named_documents("How did Pakistan and the US work together?") == set()


# --- input checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   ", "\n\t ", "x" * 100_000, "word " * (MAX_QUESTION_CHARS // 4), None, 42])
def test_unusable_questions_are_invalid_input(question):
    with pytest.raises(InvalidInputError):
        validate_question(question)


def test_question_is_trimmed_and_whitespace_collapsed():
    assert validate_question("  What   is\nCSF? ") == "What is CSF?"
    assert validate_question("x" * MAX_QUESTION_CHARS) == "x" * MAX_QUESTION_CHARS


def test_long_question_error_says_the_limit():
    with pytest.raises(InvalidInputError, match="2,000"):
        validate_question("x" * 100_000)


@pytest.mark.parametrize("k", [0, -1, 51, True, False, 2.5, "3", None])
def test_bad_k_is_invalid_input(k):
    with pytest.raises(InvalidInputError, match="k must be"):
        validate_k(k)


@pytest.mark.parametrize("k", [1, 5, 50])
def test_good_k_is_returned(k):
    assert validate_k(k) == k


# --- search on the tiny index (fake embedder) -----------------------------------------------------


@pytest.fixture
def retriever(tiny_index, fake_embedder):
    opened = tiny_index[1]
    return Retriever(opened.store, fake_embedder, opened.catalog.metadata_by_source())


@pytest.mark.parametrize("question, phrase", [
    ("When did IMET cease operations?", "IMET ceased operations"),
    ("What is the Coalition Support Fund?", "Coalition Support Fund (CSF)"),
    ("When did the Gwadar port open?", "Gwadar port opened in 2007"),
])
def test_search_finds_the_passage_first(retriever, question, phrase):
    hits = retriever.search(question, k=3)
    assert phrase in hits[0].text
    assert hits[0].dense_score > 0.2 and hits[0].lexical_score > 0
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_returns_k_distinct_hits(retriever, tiny_index):
    hits = retriever.search("Pakistan aid", k=4)
    assert len(hits) == 4 and len({h.chunk_id for h in hits}) == 4
    assert len(retriever.search("Pakistan aid", k=50)) <= sum(tiny_index[1].store.documents().values())


def test_unknown_words_give_no_lexical_ranking(retriever):
    assert retriever.lexical_ranking("recipe for chicken biryani") == []
    hits = retriever.search("recipe for chicken biryani", k=3)
    assert all(h.lexical_score is None and h.dense_score < 0.3 for h in hits)


def test_search_checks_its_input_before_embedding(retriever, fake_embedder):
    calls = fake_embedder.embed_calls
    with pytest.raises(InvalidInputError):
        retriever.search("   ", k=3)
    with pytest.raises(InvalidInputError):
        retriever.search("What is CSF?", k=0)
    assert fake_embedder.embed_calls == calls


# --- what is searched for -------------------------------------------------------------------------


@pytest.mark.parametrize("question, focus", [
    ("Besides military aid, what has the US provided to Pakistani forces?", "what has the US provided to Pakistani forces?"),
    ("Apart from CSF, which funds paid Pakistan's army?", "which funds paid Pakistan's army?"),
    ("In addition to training, what did IMET offer?", "what did IMET offer?"),
    ("What is CSF?", "What is CSF?"),
    ("Besides CSF, which fund?", "Besides CSF, which fund?"),  # too little left to search for
    ("What did the US provide besides, say, aid?", "What did the US provide besides, say, aid?"),  # not a leading clause
])
def test_search_focus_leaves_out_a_leading_exclusion(question, focus):
    assert search_focus(question) == focus


def test_search_does_not_rank_the_excluded_topic_first(retriever):
    question = "Besides the IMET training of Pakistani officers in America, when did the port open?"
    hits = retriever.search(question, k=3)
    assert "Gwadar port opened in 2007" in hits[0].text
    # Searched for whole, the excluded words pull the IMET passage first: the focus is what helps.
    assert "IMET" in retriever.search(question.replace("Besides", "About"), k=3)[0].text


@pytest.mark.parametrize("question, unknown", [
    # "Act" counts too: no tiny document has the word (the old corpus scan found it inside "abstract").
    ("What did the Kerry-Lugar-Berman Act provide to Pakistan?", ["act", "kerry-lugar-berman"]),
    ("What is the capital of Australia?", ["australia"]),
    ("When did the Gwadr port open?", []),  # a typo of a name the documents use
    ("When did IMET cease operations in Pakistan?", []),
    ("What does 24 News HD say about the Gwadar port?", []),  # named by the metadata, not the text
    ("when did the gwadar port open", []),  # no capitals, nothing to check
])
def test_unknown_names_are_those_no_document_mentions(retriever, question, unknown):
    assert retriever.unknown_names(question) == unknown


def test_a_name_beyond_ascii_is_looked_up_as_the_index_holds_it(retriever, monkeypatch):
    # The lexical index's words are ASCII: a document's "Ramón y Cajal" is there as "ram", "n", "cajal".
    monkeypatch.setattr(retriever.store, "knows_word", lambda word: word in {"ram", "n", "cajal"})
    assert retriever.unknown_names("When did Ramón y Cajal win the prize?") == []
    assert retriever.unknown_names("When did Zoë Cajal win the prize?") == ["zoë"]


EVERYDAY = frozenset("when what how much fast standard module recipe chicken cease open port accompany nightmare critical time".split())


@pytest.mark.parametrize("question, unknown", [
    ("How much faster is orjson than the standard json module?", ["orjson", "json"]),  # terms no document uses
    ("Give me a recipe for chicken biryani.", ["biryani"]),
    ("When did IMET cease operations?", []),  # a term the documents use
    ("When did the port open, nightmarishly?", []),  # a form of an everyday word: a paraphrase, not a term
    ("When did the time-critical port open?", []),
    ("When did Kareem Abdul-Jabbar's port open?", []),  # a name's parts are for unknown_names
])
def test_unknown_terms_are_uncommon_words_no_document_uses(tiny_index, fake_embedder, question, unknown):
    class EmbedderWithVocabulary(type(fake_embedder)):
        everyday_words = EVERYDAY

    opened = tiny_index[1]
    retriever = Retriever(opened.store, EmbedderWithVocabulary(), opened.catalog.metadata_by_source())
    assert retriever.unknown_terms(question) == unknown
    assert Retriever(opened.store, fake_embedder, opened.catalog.metadata_by_source()).unknown_terms(question) == []


def test_everyday_words_allow_their_other_forms():
    from rag.lexical import is_everyday_word

    vocabulary = frozenset({"accompany", "nightmare", "use"})
    assert is_everyday_word("accompanies", vocabulary) and is_everyday_word("nightmarishly", vocabulary)
    assert is_everyday_word("uses", vocabulary) and not is_everyday_word("orjson", vocabulary)


@pytest.mark.parametrize("question, parts", [
    ("Which operations does the op-ed name, and how many does the paper say the US sponsored?",
     ["Which operations does the op-ed name", "how many does the paper say the US sponsored?"]),
    ("What is CSF, and what did IMET do?", ["What is CSF", "what did IMET do?"]),
    ("What is CSF and how much did it account for?", ["What is CSF and how much did it account for?"]),  # no comma: one question
    ("What did Pakistan, and the US, agree?", ["What did Pakistan, and the US, agree?"]),  # no second question word
    ("What is CSF, and why?", ["What is CSF, and why?"]),  # too little left for a search
    ("Where were the notes written, and at which university was R first written?",  # after a preposition
     ["Where were the notes written", "at which university was R first written?"]),
    ("Which prize did she win, and in what year?", ["Which prize did she win, and in what year?"]),  # asks only for a time
])
def test_a_compound_question_is_split_into_its_questions(question, parts):
    assert search_parts(question) == parts


def test_each_part_of_a_compound_question_gets_its_best_passage(retriever):
    first = "How did Pakistan's army get its operating costs reimbursed by the Coalition Support Fund and its officers trained by IMET in America"
    # Searched whole, the long first part fills the top two with its passages (CSF, then IMET).
    assert "Cricket" not in " ".join(h.text for h in retriever.search(f"{first} and who won the trophy?", k=2))
    top_two = retriever.search(f"{first}, and who won the trophy?", k=2)
    assert "Coalition Support Fund" in top_two[0].text and "cricket team won" in top_two[1].text
    assert [h.rank for h in top_two] == [1, 2]


@pytest.mark.parametrize("question, unknown", [
    ("What did the Coalition Support Fund reimburse?", []),  # a name the paper holds as a phrase
    ("What did the Support Coalition Fund reimburse?", ["Support Coalition Fund"]),  # its words, not that name
    ("What does the Gwadar Port Authority say?", ["Gwadar Port Authority"]),
    ("What does Ayesha Khan's review say about aid?", []),  # possessive: two names, each known
    ("What does A Review of Aid to Pakistan say?", []),  # a document's title
    # A later sentence's first word is capitalised too: "Which Gwadar" is no name (rmk08).
    ("I read about the port. Which Gwadar investors are named?", []),
])
def test_unknown_phrases_are_names_no_passage_holds(retriever, question, unknown):
    assert retriever.unknown_phrases(question) == unknown


@pytest.mark.parametrize("question, unknown", [
    ("Which data.table function reads the trade figures fastest?", ["data.table"]),  # "data", "table": everyday words
    ("What does the cricket_team field hold?", ["cricket_team"]),
    ("What does gwadar-port.txt say, e.g. about ships?", []),  # a document's file name; "e.g." is no code
    ("When did IMET cease operations?", []),
])
def test_unknown_code_names_are_dotted_or_underscored_names_no_passage_holds(retriever, question, unknown):
    assert retriever.unknown_code_names(question) == unknown


@pytest.mark.parametrize("name, text, held", [
    ("csv.Sniffer.has_header", "has_header(sample): dialect = csv.Sniffer().sniff(sample)", True),  # a method under its class
    ("csv.Sniffer.has_header", "has_header(sample): inspect each column", False),  # the class is not there
    ("data.table", "a table of the trade data", False),  # a plain last word: any passage on tables holds both
    ("http.server", "run an HTTP server with http.client", False),  # "server": a plain word too
])
def test_a_dotted_name_is_held_in_parts_when_its_last_part_is_code(name, text, held):
    from rag.retrieval import _holds_code_name

    assert _holds_code_name([text], name) is held


def test_a_dotted_name_the_question_calls_is_held_in_parts():
    from rag.retrieval import _holds_code_name

    # "csv.DictWriter.writerow()": a method, documented as "writerow(row)" beside "csv.DictWriter" (pyk14).
    text = "class csv.DictWriter(f, fieldnames): the dictionary passed to the writerow() method"
    assert _holds_code_name([text], "csv.DictWriter.writerow", called=True)
    assert not _holds_code_name([text], "csv.DictWriter.writerow")
    assert not _holds_code_name(["the writerow() method"], "csv.DictWriter.writerow", called=True)  # the class is not there


@pytest.mark.parametrize("text, phrase, holds", [
    ("His Symphony No. 9 in D minor was first performed in Vienna.", "Ninth Symphony", True),
    ("His Symphony No. 5 was first performed in Vienna.", "Ninth Symphony", False),
    ("The ninth symphony opened the season.", "Ninth Symphony", True),
    ("A symphony in nine movements was never finished.", "Red Symphony", False),  # no number in the name
])
def test_a_name_numbered_another_way_is_held(text, phrase, holds):
    from rag.retrieval import _holds_phrase

    assert _holds_phrase(text, phrase) is holds
