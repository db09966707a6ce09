"""Passage selection: neighbouring hits merge into the clean text of their union; k and budget hold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import FakeEmbedder
from rag.chunking import ChunkSettings, chunk_document
from rag.converters.markdown import clean_fragment
from conftest import load_folder
from rag.passages import continuation, passages_below, select_passages
from rag.schema import Chunk, Hit


@pytest.fixture
def documents(tiny_docs):
    return {d.source: d for d in load_folder(tiny_docs.seeds, tiny_docs.project_root)}


@pytest.fixture
def chunks(documents):
    """Chunks of the tiny documents as the index has them (one sentence of overlap)."""
    return [c for d in documents.values() for c in chunk_document(d, FakeEmbedder().count_tokens)]


def find(chunks: list[Chunk], phrase: str, start: str = "") -> Chunk:
    return next(c for c in chunks if phrase in c.text and c.text.startswith(start))


def hits_of(*chunks: Chunk) -> list[Hit]:
    return [Hit(rank=n, chunk=c, score=1.0 / n, dense_score=0.5 / n, dense_rank=n) for n, c in enumerate(chunks, start=1)]


def raw_text(tiny_docs, hit: Hit) -> str:
    return (tiny_docs.project_root / hit.source).read_bytes().decode("utf-8")[hit.start:hit.end]


def test_overlapping_hits_of_one_document_merge_into_the_clean_text_of_their_union(tiny_docs, documents, chunks):
    first = find(chunks, "$73 billion")
    second = find(chunks, "Coalition Support Fund", start="Pakistan was seen")
    assert second.start < first.end  # they overlap by a sentence
    passages = select_passages(hits_of(second, first), documents, k=3)
    assert len(passages) == 1
    merged = passages[0]
    assert (merged.start, merged.end) == (first.start, second.end)
    assert merged.text == clean_fragment(raw_text(tiny_docs, merged))
    assert merged.text.startswith("INTRODUCTION:\n\nPakistan is projected")
    assert merged.text.endswith("Washington provided to Islamabad.")
    assert merged.text.count("Pakistan was seen as a solid ally") == 1  # the overlap is not repeated
    assert merged.chunk_id == Chunk.make_id(merged.source, merged.text)
    assert merged.score == 1.0 and merged.rank == 1 and merged.section == "INTRODUCTION"


def test_touching_hits_merge_too(tiny_docs, documents):
    paper = documents["seeds/aid-review.md"]
    pieces = [c for c in chunk_document(paper, lambda t: len(t.split()), ChunkSettings(max_tokens=30, overlap_sentences=0))
              if c.section == "INTRODUCTION"]
    assert len(pieces) >= 2 and pieces[1].start - pieces[0].end == 1  # a space apart, no shared text
    passages = select_passages(hits_of(pieces[0], pieces[1]), documents, k=3)
    assert len(passages) == 1
    assert passages[0].text == pieces[0].text + " " + pieces[1].text
    assert passages[0].text == clean_fragment(raw_text(tiny_docs, passages[0]))


def test_distant_hits_of_one_document_and_hits_of_other_documents_stay_apart(documents, chunks):
    intro = find(chunks, "$73 billion")
    training = find(chunks, "IMET")
    port = find(chunks, "Gwadar")
    passages = select_passages(hits_of(intro, training, port), documents, k=3)
    assert [p.chunk_id for p in passages] == [intro.chunk_id, training.chunk_id, port.chunk_id]
    assert [p.text for p in passages] == [intro.text, training.text, port.text]


def test_k_limits_the_passages_but_later_neighbours_still_merge(documents, chunks):
    intro = find(chunks, "$73 billion")
    training = find(chunks, "IMET")
    port = find(chunks, "Gwadar")
    neighbour = find(chunks, "Coalition Support Fund", start="Pakistan was seen")
    passages = select_passages(hits_of(intro, training, port, neighbour), documents, k=2)
    assert len(passages) == 2
    assert passages[0].text.endswith("Washington provided to Islamabad.")  # merged with the 4th hit
    assert passages[1].chunk_id == training.chunk_id


def test_character_budget_is_respected(documents, chunks):
    intro = find(chunks, "$73 billion")
    training = find(chunks, "IMET")
    port = find(chunks, "Gwadar")
    budget = len(intro.text) + len(port.text) + 1
    assert len(intro.text) + len(training.text) > budget
    passages = select_passages(hits_of(intro, training, port), documents, k=3, max_chars=budget)
    assert [p.chunk_id for p in passages] == [intro.chunk_id, port.chunk_id]
    assert sum(len(p.text) for p in passages) <= budget


def test_a_merge_that_would_break_the_budget_is_not_made(documents, chunks):
    first = find(chunks, "$73 billion")
    second = find(chunks, "Coalition Support Fund", start="Pakistan was seen")
    passages = select_passages(hits_of(first, second), documents, k=3, max_chars=len(first.text) + 10)
    assert [p.text for p in passages] == [first.text]


def test_the_first_passage_is_kept_even_if_longer_than_the_budget(documents, chunks):
    training = find(chunks, "IMET")
    passages = select_passages(hits_of(training), documents, k=3, max_chars=10)
    assert [p.chunk_id for p in passages] == [training.chunk_id]


def test_ranks_are_renumbered_from_one(documents, chunks):
    first = find(chunks, "$73 billion")
    second = find(chunks, "Coalition Support Fund", start="Pakistan was seen")
    port = find(chunks, "Gwadar")
    hits = hits_of(first, second, port)
    passages = select_passages(hits, documents, k=3)
    assert [p.rank for p in passages] == [1, 2]
    assert passages[1].chunk_id == port.chunk_id and passages[1].score == hits[2].score


def test_without_the_document_hits_are_not_merged(chunks):
    first = find(chunks, "$73 billion")
    second = find(chunks, "Coalition Support Fund", start="Pakistan was seen")
    passages = select_passages(hits_of(first, second), {}, k=3)
    assert [p.chunk_id for p in passages] == [first.chunk_id, second.chunk_id]


def test_no_hits_no_passages(documents):
    assert select_passages([], documents, k=3) == []


def test_a_hit_that_bridges_two_passages_joins_them(tiny_docs, documents):
    paper = documents["seeds/aid-review.md"]
    a, b, c, d = [x for x in chunk_document(paper, lambda t: len(t.split()), ChunkSettings(max_tokens=30, overlap_sentences=1))
                  if x.section == "INTRODUCTION"]
    assert a.end + 2 < c.start and b.start < a.end and c.start - b.end <= 2  # b overlaps a and touches c
    passages = select_passages(hits_of(a, c, b, d), documents, k=3)
    assert [(p.start, p.end) for p in passages] == [(a.start, d.end)]
    assert passages[0].text == clean_fragment(raw_text(tiny_docs, passages[0]))
    assert passages[0].rank == 1 and passages[0].score == 1.0


def test_no_two_passages_overlap_or_touch(documents):
    small = [c for d in documents.values() for c in chunk_document(d, lambda t: len(t.split()), ChunkSettings(max_tokens=30))]
    hits = hits_of(*small)
    for order in (hits, hits[::-1], hits[1::2] + hits[::2]):
        passages = select_passages(order, documents, k=10, max_chars=10_000)
        for i, first in enumerate(passages):
            for second in passages[i + 1:]:
                assert first.source != second.source or second.start > first.end + 2 or first.start > second.end + 2


def test_a_continuation_is_the_whole_sentences_after_a_passage_within_its_section(tiny_docs, documents, chunks):
    opening = find(chunks, "IMET) trained")
    raw = (tiny_docs.project_root / opening.source).read_bytes().decode("utf-8")
    first_sentence = Hit(rank=1, chunk=replace(opening, end=raw.index("in America.") + len("in America.")), score=1.0)
    following = continuation(first_sentence, documents)
    assert following is not None and following.text.startswith("When relations became tense in 1990, IMET ceased operations.")
    assert following.text == clean_fragment(raw_text(tiny_docs, following)) and following.section == opening.section
    assert "Gwadar" not in following.text and "following measures" in following.text  # its own section only


def test_a_continuation_stops_at_the_end_of_the_section(documents, chunks):
    last = max((c for c in chunks if c.section == "INTRODUCTION"), key=lambda c: c.end)
    assert continuation(Hit(rank=1, chunk=last, score=1.0), documents) is None


def test_passages_below_are_what_follows_each_given_passage(documents, chunks):
    given = select_passages(hits_of(find(chunks, "IMET) trained"), find(chunks, "$73 billion")), documents, k=2)
    later = passages_below(given, documents)
    assert [p.rank for p in later] == list(range(1, len(later) + 1)) and 1 <= len(later) <= 2
    for passage in later:  # each starts where a given passage of its document ends, and repeats none of it
        assert any(passage.source == g.source and 0 <= passage.start - g.end <= 2 for g in given)


def test_a_passage_that_begins_inside_a_sentence_begins_where_that_sentence_does(tiny_docs, documents, chunks):
    # A sentence too long for one chunk goes on in the next one, which then begins "and WriteXLS
    # (...) each contain a function ..." without the package named before it (rmk10).
    opening = find(chunks, "IMET) trained")
    raw = (tiny_docs.project_root / opening.source).read_bytes().decode("utf-8")
    inside = raw.index("trained Pakistani officers", opening.start)
    hit = Hit(rank=1, chunk=replace(opening, start=inside, text=clean_fragment(raw[inside:opening.end])), score=1.0)
    [passage] = select_passages([hit], documents, k=2)
    assert passage.text.startswith("The International Military Education and Training programme (IMET) trained")
    assert passage.end == opening.end and passage.text == clean_fragment(raw_text(tiny_docs, passage))
    # Not further back than the budget allows: then the passage stays as it was.
    [kept] = select_passages([hit], documents, k=2, max_chars=len(hit.text) + 10)
    assert kept.text == hit.text


def test_a_passage_that_begins_a_sentence_is_left_as_it_is(documents, chunks):
    opening = find(chunks, "IMET) trained")
    [passage] = select_passages(hits_of(opening), documents, k=2)
    assert passage.text == opening.text and passage.start == opening.start
