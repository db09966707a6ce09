"""Chunking: sizes, whole sentences, overlap, stable ids, kinds, and the sentence splitter."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import SEEDS, FakeEmbedder
from rag.chunking import ChunkSettings, chunk_document, split_sentences
from rag.converters.markdown import clean_text
from conftest import load_document, load_folder
from rag.schema import Chunk, Document

ROOT = SEEDS.parent


def words(text: str) -> int:
    return len(text.split())


def document_of(raw: str, source: str = "seeds/test.md") -> Document:
    text, offsets, sections = clean_text(raw)
    return Document(source=source, title="Test", text=text, offsets=offsets, sections=sections)


GREEK = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()
SENTENCES = [f"Sentence {w} has six words here." for w in GREEK]  # 6 words each
TWO_SECTIONS = "# First\n\n" + " ".join(SENTENCES[:8]) + "\n\n# Second\n\n" + " ".join(SENTENCES[8:]) + "\n"
SMALL = ChunkSettings(max_tokens=20, overlap_sentences=1, min_section_tokens=1)  # three sentences a chunk


# --- the sentence splitter -------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("Pakistan is an ally. The US gave aid!", ["Pakistan is an ally.", "The US gave aid!"]),
    ("Was it? Yes. No!", ["Was it?", "Yes.", "No!"]),
    ("It ended in 1990. IMET ceased.", ["It ended in 1990.", "IMET ceased."]),
    ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
    ("Cost was $5. $6 later.", ["Cost was $5.", "$6 later."]),
    ("South Asia (Hilali, 2007, p. 45). The events changed.", ["South Asia (Hilali, 2007, p. 45).", "The events changed."]),
    ("As shown (pp. 7-8). Next one.", ["As shown (pp. 7-8).", "Next one."]),
    ("- 3. To control the insurgency by sharing information.", ["- 3. To control the insurgency by sharing information."]),
    ("Jones, S. G. wrote it. Then more.", ["Jones, S. G. wrote it.", "Then more."]),
    ("The U.S. Army left. Then it rained.", ["The U.S. Army left.", "Then it rained."]),
    ("Aid rose 3.5 percent. Next.", ["Aid rose 3.5 percent.", "Next."]),
    ("no closing punctuation", ["no closing punctuation"]),
    ("Trailing spaces.   ", ["Trailing spaces."]),
])
def test_split_sentences_known_answers(text, expected):
    assert [text[a:b] for a, b in split_sentences(text)] == expected


def test_split_sentences_shifts_spans_by_the_offset():
    assert split_sentences("One. Two.", offset=100) == [(100, 104), (105, 109)]


# --- sizes, sentences, overlap ---------------------------------------------------------------------


def test_every_chunk_fits_the_budget_by_the_counter_used():
    document = document_of(TWO_SECTIONS)
    for counter, limit in ((words, 20), (FakeEmbedder().count_tokens, 24), (len, 150)):
        chunks = chunk_document(document, counter, replace(SMALL, max_tokens=limit))
        assert len(chunks) > 3
        assert all(counter(c.text) <= limit for c in chunks), counter


def test_chunks_consist_of_whole_sentences():
    document = document_of(TWO_SECTIONS)
    for chunk in chunk_document(document, words, SMALL):
        body = chunk.text.split("\n\n")[-1]  # after a heading, if the chunk starts with one
        pieces = [body[a:b] for a, b in split_sentences(body)]
        assert pieces and all(p in SENTENCES for p in pieces), chunk.text


def test_known_chunks_with_one_sentence_of_overlap():
    chunks = chunk_document(document_of(TWO_SECTIONS), words, SMALL)
    s = SENTENCES
    assert [(c.section, c.text) for c in chunks] == [
        ("First", "First\n\n" + " ".join(s[0:3])),
        ("First", " ".join(s[2:5])),
        ("First", " ".join(s[4:7])),
        ("First", " ".join(s[6:8])),
        ("Second", "Second\n\n" + " ".join(s[8:11])),
        ("Second", " ".join(s[10:13])),
        ("Second", " ".join(s[12:15])),
        ("Second", " ".join(s[14:16])),
    ]


def test_consecutive_chunks_of_a_section_share_exactly_one_sentence():
    chunks = chunk_document(document_of(TWO_SECTIONS), words, SMALL)
    for previous, following in zip(chunks, chunks[1:]):
        shared = [s for s in SENTENCES if s in previous.text and s in following.text]
        if following.section == previous.section:
            assert len(shared) == 1 and previous.text.endswith(shared[0]) and following.text.startswith(shared[0])
        else:  # a new section starts with its heading and carries nothing over
            assert shared == [] and following.text.startswith(following.section + "\n\n")


@pytest.mark.parametrize("overlap", [0, 2])
def test_overlap_setting_is_the_number_of_shared_sentences(overlap):
    chunks = chunk_document(document_of(TWO_SECTIONS), words, replace(SMALL, overlap_sentences=overlap))
    first = [c for c in chunks if c.section == "First"]
    for previous, following in zip(first, first[1:]):
        shared = [s for s in SENTENCES if s in previous.text and s in following.text]
        assert len(shared) == overlap


def test_overlap_on_the_tiny_paper_repeats_the_boundary_sentence(tiny_docs):
    paper = load_document(tiny_docs.seeds / "aid-review.md", tiny_docs.project_root)
    chunks = [c for c in chunk_document(paper, FakeEmbedder().count_tokens) if c.section == "INTRODUCTION"]
    assert len(chunks) == 2
    boundary = "Pakistan was seen as a solid ally in South Asia (Hilali, 2007, p. 45)."
    assert chunks[0].text.endswith(boundary) and chunks[1].text.startswith(boundary)


def test_a_sentence_longer_than_a_chunk_is_cut_at_word_boundaries():
    long_sentence = " ".join(f"word{i}" for i in range(50)) + "."
    chunks = chunk_document(document_of(long_sentence), words, ChunkSettings(max_tokens=20, overlap_sentences=1))
    assert len(chunks) > 2 and all(words(c.text) <= 20 for c in chunks)
    seen = " ".join(c.text for c in chunks).split()
    assert set(seen) == set(long_sentence.split())  # nothing lost, only word-sized pieces


def test_spans_point_at_the_original_file_and_stay_in_order(tiny_docs):
    for document in load_folder(tiny_docs.seeds, tiny_docs.project_root):
        raw = (tiny_docs.project_root / document.source).read_bytes().decode("utf-8")
        chunks = chunk_document(document, FakeEmbedder().count_tokens)
        assert chunks
        for chunk in chunks:
            assert 0 <= chunk.start < chunk.end <= len(raw)
            assert raw[chunk.start] == chunk.text[0] and raw[chunk.end - 1] == chunk.text[-1]
        assert [c.start for c in chunks] == sorted(c.start for c in chunks)


# --- ids -----------------------------------------------------------------------------------------------


def test_ids_are_stable_and_follow_the_text():
    first = chunk_document(document_of(TWO_SECTIONS), words, SMALL)
    again = chunk_document(document_of(TWO_SECTIONS), words, SMALL)
    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    assert len({c.chunk_id for c in first}) == len(first)
    assert all(len(c.chunk_id) == 16 and int(c.chunk_id, 16) >= 0 for c in first)

    edited = chunk_document(document_of(TWO_SECTIONS.replace("Sentence pi", "Sentence rho")), words, SMALL)
    assert [c.chunk_id for c in edited][:-1] == [c.chunk_id for c in first][:-1]
    assert edited[-1].chunk_id != first[-1].chunk_id


def test_id_depends_on_the_source_too():
    assert Chunk.make_id("seeds/a.md", "Same text.") == Chunk.make_id("seeds/a.md", "Same text.")
    assert Chunk.make_id("seeds/a.md", "Same text.") != Chunk.make_id("seeds/b.md", "Same text.")
    assert Chunk.make_id("seeds/a.md", "Same text.") != Chunk.make_id("seeds/a.md", "Same text!")


# --- kinds on the real paper ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_chunks():
    documents = load_folder(SEEDS, ROOT)
    return {d.source: chunk_document(d, FakeEmbedder().count_tokens) for d in documents}


def test_paper_front_matter_and_references_are_marked(seed_chunks):
    paper = seed_chunks["seeds/pakistan-us-strategic-partnership-review.md"]
    kind_of = {}
    for chunk in paper:
        kind_of.setdefault(chunk.section, set()).add(chunk.kind)
    assert paper[0].kind == "front_matter" and paper[0].text.startswith("ASIO Journal of Humanities")
    assert kind_of["ARTICLE INFO"] == {"front_matter"}
    assert kind_of["How to cite the article?"] == {"front_matter"}
    assert kind_of["REFERENCES"] == {"references"}
    for section in ("ABSTRACT", "INTRODUCTION", "Reimbursement for Military Service", "CONCLUSION"):
        assert kind_of[section] == {"content"}, section
    assert any("Coalition Support Fund (CSF)" in c.text and c.kind == "content" for c in paper)


def test_article_without_headings_is_all_content(seed_chunks):
    article = seed_chunks["seeds/pak-us-ties-and-global-security.txt"]
    assert len(article) > 10
    assert {c.kind for c in article} == {"content"}
    assert {c.section for c in article} == {""}


def test_seed_chunks_never_cross_a_section_heading_after_the_front_matter(seed_chunks):
    paper = seed_chunks["seeds/pakistan-us-strategic-partnership-review.md"]
    headings = ["INTRODUCTION", "CONCLUSION", "REFERENCES", "Reimbursement for Military Service"]
    for chunk in paper:
        inside = [h for h in headings if f"\n\n{h}" in chunk.text]
        assert inside == [], (chunk.section, inside)


def test_seed_chunks_fit_the_default_budget(seed_chunks):
    count = FakeEmbedder().count_tokens
    limit = ChunkSettings().max_tokens
    for chunks in seed_chunks.values():
        assert all(count(c.text) <= limit for c in chunks)
        assert len({c.start for c in chunks}) == len(chunks)  # no chunk repeats another's start


_ODD_TEXT = ("Café naïve — Pakistan’s €33 billion. 北京是中国的首都。 A literal [SEP] and [CLS] here! "
             "A wordthatisfarlongerthanthetokenizerwilleversplitintopiecesbecauseitrunsonpastonehundredcharactersintotal ends. "
             "Emoji 😀 test.\u200b Zero\u00a0width and nbsp. e\u0301 combining; 3.5% of the U.S.A. rose. ﬁnancial ﬂow. ２ İstanbul ß.")


def test_counting_spans_from_one_tokenisation_gives_the_counts_of_the_texts(real_count_tokens):
    """The chunker counts a document's tokens once (token_spans) instead of once per sentence and
    per growing chunk: the count of every span it can ask about (cut between words) is unchanged."""
    import re

    from rag.chunking import span_counter
    from rag.embedding import MiniLMEmbedder

    count = span_counter(_ODD_TEXT, real_count_tokens, MiniLMEmbedder().token_spans)
    cuts = sorted({0, len(_ODD_TEXT)} | {m.start() for m in re.finditer(r"\S+", _ODD_TEXT)}
                  | {m.end() for m in re.finditer(r"\S+", _ODD_TEXT)} | {i for span in split_sentences(_ODD_TEXT) for i in span})
    wrong = [(a, b) for i, a in enumerate(cuts) for b in cuts[i:] if count(a, b) != real_count_tokens(_ODD_TEXT[a:b])]
    assert not wrong, [_ODD_TEXT[a:b] for a, b in wrong[:5]]


def test_chunks_are_the_same_with_and_without_token_spans(tiny_docs, real_count_tokens):
    from rag.embedding import MiniLMEmbedder

    spans = MiniLMEmbedder().token_spans
    for document in load_folder(tiny_docs.seeds, tiny_docs.project_root) + [Document(source="odd.md", title="Odd", text=_ODD_TEXT, offsets=list(range(len(_ODD_TEXT))))]:
        for settings in (ChunkSettings(), ChunkSettings(max_tokens=24, overlap_sentences=2)):
            assert chunk_document(document, real_count_tokens, settings, spans) == chunk_document(document, real_count_tokens, settings)
