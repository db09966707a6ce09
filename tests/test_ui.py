"""The chat page without a browser or a model: HTML rendering, uploads, and the running app driven
over its event API with a scripted bot or the real Bot on fakes (several sessions, collections,
uploads, errors, bad input from scripts, twenty visitors at once)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import FakeEmbedder, free_port, pieces_of, tiny_settings_for, write_tiny_documents

from rag.errors import InvalidInputError, ModelMissingError
from rag.schema import Answer, Chunk, Citation, Hit
from rag.settings import Settings
from ui import render

# gradio's queue calls pandas APIs that pandas 3 deprecates, once per event; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting:Warning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:Warning"),
]

REVIEW = "Pakistan-US Strategic Partnership: A Review Paper"
ARTICLE = "Pak-US ties and global security"
CSF_PASSAGE = (
    "Since 2001, Pakistan has been a vital ally in the fight against terrorism.\n"
    "In addition, the United States established the Coalition Support Fund (CSF) to reimburse "
    "Pakistan's army for operating costs. CSF accounted for over a third of the Washington-provided funds."
)
CSF_QUOTE = "the United States established the Coalition Support Fund (CSF) to reimburse Pakistan's army for operating costs."
CSF_TEXT = "CSF is the Coalition Support Fund, set up by the United States to reimburse Pakistan's army for operating costs [1]."
REFUSAL = "The documents do not answer this question."


# --- records like the ones the Bot returns ----------------------------------------------------


def make_hit(rank: int, text: str, title: str = REVIEW, section: str = "INTRODUCTION:") -> Hit:
    source = "seeds/pakistan-us-strategic-partnership-review.md" if title == REVIEW else "seeds/pak-us-ties-and-global-security.txt"
    chunk = Chunk(Chunk.make_id(source, text), source, title, section, 100 * rank, 100 * rank + len(text), text)
    return Hit(rank, chunk, score=0.5 / rank, dense_score=0.6 / rank, lexical_score=None if rank > 1 else 7.25)


def make_citation(n: int = 1, passage: str = CSF_PASSAGE, quote: str = CSF_QUOTE, supported: bool = True, **changes) -> Citation:
    fields = dict(n=n, source="seeds/pakistan-us-strategic-partnership-review.md", title=REVIEW, section="INTRODUCTION:",
                  start=4120, end=4230, quote=quote, supported=supported, score=0.9, chunk_id="c1", passage=passage)
    fields.update(changes)
    return Citation(**fields)


def csf_answer(question: str = "What is CSF?", text: str = CSF_TEXT, **changes) -> Answer:
    hits = [make_hit(1, CSF_PASSAGE), make_hit(2, "Security cooperation has always been a cornerstone.", ARTICLE, "")]
    fields = dict(citations=[make_citation(chunk_id=hits[0].chunk_id)], hits=hits,
                  timings={"retrieval": 0.042, "first_token": 0.8, "total": 2.5, "backend": "llama-cpp",
                           "model": "qwen", "prompt_tokens": 1234})
    fields.update(changes)
    return Answer(question, text, True, **fields)


def declined_answer(question: str) -> Answer:
    hits = [make_hit(1, "The US has provided significant military aid to Pakistan.", ARTICLE, "")]
    return Answer(question, REFUSAL, False, hits=hits, timings={"retrieval": 0.03, "first_token": None},
                  decline_reason="no_evidence")


class FakeBot:
    """rag.Bot's methods, scripted: answers questions about CSF (or "it"), declines the rest, and
    raises on cue. `delay` slows each piece so that two sessions overlap; `most_at_once` records the
    most answers that ever ran at the same time (the page promises one)."""

    def __init__(self, settings: Settings | None = None, delay: float = 0.0):
        self.settings = settings or Settings()
        self.embedder = FakeEmbedder()  # what the page adds uploaded files with
        self.delay = delay
        self.asked: list[tuple[str, int]] = []  # (question, length of the history it came with)
        self.most_at_once = 0
        self._running = 0
        self._lock = threading.Lock()

    def rewrite(self, question: str, history) -> str | None:
        if not question.strip():
            raise InvalidInputError("the question is empty; type a question")
        return "What is the Coalition Support Fund (CSF)?" if history and " it" in f" {question}" else None

    def ask_stream(self, question: str, *, history=None, k=None, rewritten=None) -> Iterator[str | Answer]:
        if not question.strip():
            raise InvalidInputError("the question is empty; type a question")
        if "model missing" in question:
            raise ModelMissingError("no model at /nowhere/model.gguf; run `pakus models` to see what is installed")
        if "crash" in question:
            raise ZeroDivisionError("division by zero")
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        try:
            self.asked.append((question, len(history or [])))
            if "CSF" in question or rewritten:
                final = csf_answer(question, rewritten_question=rewritten)
                for word in final.answer.split(" "):
                    time.sleep(self.delay)
                    yield word + " "
                yield final
            else:
                yield REFUSAL
                yield declined_answer(question)
        finally:
            with self._lock:
                self._running -= 1


# --- rendering --------------------------------------------------------------------------------


def test_answer_links_each_marker_to_its_source_card():
    html = render.render_answer(csf_answer(), "pk-t1-")
    assert '<a class="pk-ref" href="#pk-t1-c1"' in html
    assert 'id="pk-t1-c1"' in html  # the passage the link opens, inside the card's <details>
    assert html.count("<details") == 1
    assert REVIEW in html and "INTRODUCTION" in html and "INTRODUCTION:" not in html
    assert "✓ verified" in html
    assert "seeds/pakistan-us-strategic-partnership-review.md, characters 4120–4230" in html


def test_quote_is_highlighted_inside_its_passage():
    html = render.render_answer(csf_answer(), "pk-t1-")
    passage = re.search(r'id="pk-t1-c1">(.*?)</div>', html).group(1)
    assert passage.startswith("Since 2001, Pakistan has been a vital ally")
    assert f"<mark>{CSF_QUOTE.replace(chr(39), '&#x27;')}</mark>" in passage
    assert passage.endswith("Washington-provided funds.")


def test_quote_is_found_when_whitespace_differs():
    passage = "Intro.\nThe United States established\nthe fund. More."
    html = render.highlight(passage, "The United States established the fund.")
    assert "<mark>The United States established<br>the fund.</mark>" in html


def test_quote_missing_from_passage_is_still_shown_marked():
    html = render.highlight("A passage about something else.", "A quoted sentence.")
    assert html.startswith("<mark>A quoted sentence.</mark>")
    assert "A passage about something else." in html


def test_unverified_citation_is_flagged():
    answer = csf_answer(citations=[make_citation(supported=False)])
    html = render.render_answer(answer, "pk-t1-")
    assert "not verified" in html and "pk-card-warn" in html


def test_unsupported_sentences_are_flagged_in_place_or_listed():
    kept = "CSF also paid for schools."
    answer = csf_answer(text=f"{CSF_TEXT} {kept}", unsupported_sentences=[kept, "It was founded in 1950."])
    html = render.render_answer(answer, "pk-t1-")
    assert f'<span class="pk-unsupported" title="No cited passage supports this sentence">{kept}</span>' in html
    assert "Left out because no passage supports them" in html and "<li>It was founded in 1950.</li>" in html


def test_markers_naming_no_citation_stay_plain_text():
    answer = csf_answer(text="CSF is a fund [1, 7]. Another claim [9].")
    html = render.render_answer(answer, "pk-t2-")
    assert 'href="#pk-t2-c1"' in html
    assert "[7]" in html and 'href="#pk-t2-c7"' not in html
    assert "Another claim [9]." in html


def test_everything_from_documents_and_model_is_escaped():
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    answer = csf_answer(
        text=f"Answer {evil} [1].",
        citations=[make_citation(passage=f"before {evil} after", quote=evil, title=f"T {evil}", section=evil, source=evil)],
        hits=[make_hit(1, evil, title=evil, section=evil)],
        rewritten_question=evil,
        unsupported_sentences=[evil],
    )
    for html in (render.render_answer(answer, "p-"), render.render_declined(answer), render.render_explain(answer),
                 render.render_streaming(evil, "q", evil), render.render_error(evil)):
        assert "<script>" not in html and "<img" not in html
        assert "&lt;script&gt;" in html


def test_html_never_contains_a_newline():
    # The chat's Markdown parser would treat whatever follows a blank line as Markdown.
    answer = csf_answer(text="First paragraph [1].\n\nSecond paragraph.\nSame paragraph.")
    html = render.render_answer(answer, "pk-t1-")
    assert "\n" not in html
    assert "<p>First paragraph" in html and "<p>Second paragraph.<br>Same paragraph.</p>" in html
    assert "\n" not in render.render_declined(declined_answer("q")) + render.render_streaming("a\n\nb")


def test_declined_question_is_shown_as_declined_with_closest_passages():
    html = render.render_answer(declined_answer("Who won the 2024 US presidential election?"), "pk-t1-")
    assert "pk-declined" in html and "Not in the documents" in html and REFUSAL in html
    assert "No passage in the documents is close enough" in html
    assert "Closest passages" in html and "The US has provided significant military aid" in html
    assert "pk-error" not in html and "pk-ref" not in html


def test_rewritten_follow_up_is_shown_only_when_it_differs():
    follow_up = csf_answer("How much did it provide?", rewritten_question="How much did the CSF provide?")
    assert "Searched for: <q>How much did the CSF provide?</q>" in render.render_answer(follow_up, "p-")
    same = csf_answer("What is CSF?", rewritten_question="What is CSF?")
    assert "Searched for" not in render.render_answer(same, "p-")


def test_explain_shows_scores_and_timings():
    html = render.render_explain(csf_answer())
    assert "Fused" in html and "0.500" in html and "0.600" in html and "7.250" in html
    assert "–" in html  # the second hit has no lexical score
    assert "cited" in html  # the first hit is the cited passage
    assert "0.04 s" in html and "2.50 s" in html and "1,234" in html and "llama-cpp" in html
    assert "–" in render.render_explain(declined_answer("q"))  # first_token None: the model never ran
    assert "Ask a question" in render.render_explain(None)


def test_streaming_and_error_views():
    assert "pk-cursor" in render.render_streaming("CSF is")
    html = render.render_error("no index at /x; run `pakus index`")
    assert "Could not answer" in html and "run `pakus index`" in html


# --- the app ----------------------------------------------------------------------------------



def test_a_pdf_citation_shows_its_page():
    cited = make_citation(page=4, start=12, end=80, source="/data/uploads/report.pdf")
    html = render.render_answer(csf_answer(citations=[cited]), "pk-t1-")
    assert '<span class="pk-page">p. 4</span>' in html
    assert "/data/uploads/report.pdf, p. 4, characters 12–80" in html
    assert "p. " not in render.render_answer(csf_answer(), "pk-t1-")  # no page for a text file
    chunk = Chunk("c9", "r.pdf", "Report", "", 1000, 1040, "A passage on page three.", page=3, page_start=990)
    hit = Hit(1, chunk, score=0.5)
    declined = Answer("q", REFUSAL, False, hits=[hit])
    assert "r.pdf, p. 3, characters 10–50" in render.render_declined(declined)  # within the page's text
    assert "p. 3" in render.render_explain(declined)


def test_header_names_the_collection_and_its_documents():
    seeds = [{"title": REVIEW, "source": "seeds/review.md"}, {"title": ARTICLE, "source": "seeds/article.txt"}]
    html = render.render_header("seeds", seeds)
    assert "seeds" in html and "2 documents" in html and f"“{REVIEW}” and “{ARTICLE}”" in html
    papers = [{"title": f"Paper {i}", "source": f"/u/p{i}.pdf"} for i in range(7)]
    html = render.render_header("papers", papers)
    assert "papers" in html and "7 documents" in html and "and 4 more" in html
    assert "Pakistan" not in html and "two documents" not in html
    assert "no documents yet" in render.render_header("empty", [])
    assert "cannot be opened: broken" in render.render_header("x", None, "broken")
    assert "&lt;b&gt;" in render.render_header("<b>", [{"title": "<b>", "source": "s"}])


def test_documents_table_lists_title_file_format_pages_chunks():
    html = render.render_documents("papers", [
        {"title": "Annual report", "source": "/home/u/uploads/papers/report.pdf", "format": "pdf", "pages": 12, "chunks": 40},
        {"title": "Notes", "source": "/home/u/uploads/papers/notes.md", "format": "markdown", "pages": None, "chunks": 3},
    ])
    assert "<td>Annual report</td>" in html and 'title="/home/u/uploads/papers/report.pdf">report.pdf<' in html
    assert "<td>pdf</td><td>12</td><td>40</td>" in html and "<td>markdown</td><td>–</td><td>3</td>" in html
    assert "No documents in papers yet" in render.render_documents("papers", [])


# --- a project with two collections, and a generator that quotes its passages ----------------------


CRICKET = """# Cricket season

The national cricket team won the championship trophy in Lahore in 2019.

The captain scored a century in the final match against Karachi.
"""


def make_project(root) -> Settings:
    """The tiny seeds (indexed by the fake embedder) and a second collection, "cricket", in root."""
    from rag.index import build_seeds
    from rag.ingest import add

    write_tiny_documents(root)
    settings = tiny_settings_for(root, home=root / "home")
    build_seeds(settings, FakeEmbedder())
    notes = root / "notes"
    notes.mkdir()
    (notes / "cricket.md").write_text(CRICKET, encoding="utf-8")
    add([notes / "cricket.md"], settings.with_overrides(collection="cricket"), embedder=FakeEmbedder())
    return settings


class PassageGenerator:
    """Answers like a careful model, at once: the passage sentence sharing most words with the
    question, verbatim, with its [n]. Records how many streams ever ran at the same time."""

    backend = "fake"
    model_name = "passage-quoter"

    def __init__(self, delay: float = 0.0, concurrent: bool = False):
        self.delay = delay
        if concurrent:
            self.concurrent = True
        self.calls = 0
        self.most_at_once = 0
        self._running = 0
        self._lock = threading.Lock()

    def stream(self, messages, *, max_tokens, stop=()):
        from rag.lexical import tokenize

        content = messages[-1]["content"]
        if "Rewritten question:" in content:  # a follow-up: the bot falls back to joining the questions
            yield ""
            return
        question = content.rsplit("Question:", 1)[1].split("\nAnswer:")[0]
        passages = content.split("Passages:\n", 1)[1].rsplit("\n\nQuestion:", 1)[0]
        parts = re.split(r"(?m)^\[(\d+)\] ", passages)
        sentences = [(int(n), s.strip()) for n, text in zip(parts[1::2], parts[2::2])
                     for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
        words = set(tokenize(question))
        n, sentence = max(sentences, key=lambda item: len(words & set(tokenize(item[1]))))
        with self._lock:
            self.calls += 1
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        try:
            for piece in pieces_of(f"{sentence} [{n}]"):
                time.sleep(self.delay)
                yield piece
        finally:
            with self._lock:
                self._running -= 1

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def fake_models(generator=None):
    """A bot factory: the real Bot (retrieval, citation checks) on the fake embedder and generator."""
    from rag.bot import Bot

    embedder = FakeEmbedder()
    generator = generator or PassageGenerator()
    return lambda settings: Bot(settings, embedder=embedder, generator=generator)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Settings:
    return make_project(tmp_path_factory.mktemp("project"))


# --- the pieces of the app -------------------------------------------------------------------------


def test_import_ui_does_not_import_gradio():
    code = "import sys, ui, ui.app, ui.render, ui.session, ui.uploads; assert 'gradio' not in sys.modules, 'gradio imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_app_has_a_collection_list_and_no_backend_choice(project):
    import gradio as gr

    from ui.app import build_app

    app = build_app(bot_factory=FakeBot, settings=project.with_overrides(collection="cricket"))
    assert isinstance(app, gr.Blocks)
    blocks = list(app.blocks.values())
    settings_box = next(b for b in blocks if isinstance(b, gr.Accordion) and b.label == "Settings and explain")
    assert settings_box.open is False
    dropdowns = [b for b in blocks if isinstance(b, gr.Dropdown)]
    assert len(dropdowns) == 1  # the collection; the backend is the operator's, chosen when starting the page
    assert [choice[1] for choice in dropdowns[0].choices] == ["seeds", "cricket"]
    assert dropdowns[0].value == "cricket"  # `pakus ui -c cricket`
    files = next(b for b in blocks if isinstance(b, gr.File))
    assert files.file_count == "multiple"
    header = next(b for b in blocks if isinstance(b, gr.HTML) and "pk-header" in str(b.value))
    assert "cricket" in header.value and "Cricket season" in header.value and "Pakistan" not in header.value
    model = next(b for b in blocks if isinstance(b, gr.Markdown) and "Model:" in str(b.value))
    assert "llama-cpp" in model.value and "chosen when this page was started" in model.value


def test_page_options_come_from_the_environment():
    from rag.errors import ConfigError
    from ui.uploads import PageOptions

    assert PageOptions.from_env({}) == PageOptions(max_upload_mb=50, queue_size=20, concurrency=4)
    assert PageOptions.from_env({"PAKUS_UI_MAX_UPLOAD_MB": "5", "PAKUS_UI_QUEUE_SIZE": " 3 "}).max_upload_mb == 5
    for bad in ("0", "-1", "ten", "1.5"):
        with pytest.raises(ConfigError, match="PAKUS_UI_MAX_UPLOAD_MB must be a positive whole number"):
            PageOptions.from_env({"PAKUS_UI_MAX_UPLOAD_MB": bad})


def test_bot_pool_builds_one_bot_per_collection_and_loads_the_models_once(project, monkeypatch):
    import rag.bot
    from rag.bot import Bot
    from ui.session import BotPool

    loads = []
    monkeypatch.setattr(rag.bot, "load_generator", lambda settings: loads.append(settings.backend) or PassageGenerator())
    embedders = []

    def factory(settings):
        embedders.append(FakeEmbedder())  # every bot comes with its own; the pool makes them share
        return Bot(settings, embedder=embedders[-1])

    pool = BotPool(project, factory)
    seeds, cricket = pool.get("seeds"), pool.get("cricket")
    assert seeds is not cricket and pool.get() is seeds and pool.get("cricket") is cricket
    assert cricket.embedder is seeds.embedder and cricket.generator is seeds.generator
    assert loads == ["llama-cpp"]  # switching collections loaded no model
    assert [h.source for h in cricket.search("championship trophy", 1)] == [str(project.project_root / "notes" / "cricket.md")]
    assert pool.embedder() is seeds.embedder


def test_bot_pool_renews_a_changed_collection_after_its_running_answers(project):
    from ui.session import BotPool

    class ClosingBot(FakeBot):
        def close(self):
            self.closed = True

    pool = BotPool(project, ClosingBot)
    with pool.use("cricket") as running:
        pool.changed("cricket")  # files were added while an answer runs on the old bot
        assert not getattr(running, "closed", False)
        fresh = pool.get("cricket")
        assert fresh is not running
    assert running.closed  # closed once its answer finished
    idle = pool.get("cricket")
    pool.changed("cricket")
    assert idle.closed and pool.get("cricket") is not idle
    pool.changed("never-opened")  # nothing to renew


def test_bot_pool_warms_up_once_and_retries_after_a_failure():
    from ui.session import BotPool

    class WarmingBot(FakeBot):
        failures = 1
        warm_ups = 0

        def warm_up(self):
            WarmingBot.warm_ups += 1
            if WarmingBot.failures:
                WarmingBot.failures -= 1
                raise ModelMissingError("no model yet")

    pool = BotPool(Settings(), WarmingBot)
    with pytest.raises(ModelMissingError):
        pool.get()
    assert not pool.ready()
    bot = pool.get()
    assert pool.ready() and pool.get() is bot and WarmingBot.warm_ups == 2


@pytest.mark.parametrize("concurrent, expected", [(False, 1), (True, 3)])
def test_answer_gate_lets_one_or_a_bounded_number_through_in_order(concurrent, expected):
    from ui.session import AnswerGate

    gate = AnswerGate(bound=3)
    inside, most, order = [0], [0], []
    lock = threading.Lock()

    def visitor(i):
        with gate.turn(concurrent):
            with lock:
                order.append(i)
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.02)
            with lock:
                inside[0] -= 1

    threads = []
    for i in range(8):
        threads.append(threading.Thread(target=visitor, args=(i,)))
        threads[-1].start()
        time.sleep(0.002)
    for thread in threads:
        thread.join(10)
    assert most[0] == expected and sorted(order) == list(range(8))
    if not concurrent:
        assert order == list(range(8))  # first come, first served
    assert not gate.busy


# --- uploads, through the function the page calls ---------------------------------------------------


@pytest.fixture
def uploads_home(tmp_path) -> tuple[Settings, object]:
    """A fresh project (the uploads change it) and the files a visitor picked, in a temporary folder."""
    settings = make_project(tmp_path / "project")
    picked = tmp_path / "browser-temp"
    picked.mkdir()
    return settings, picked


def test_upload_a_note_and_a_spreadsheet_into_a_new_collection(uploads_home):
    from rag.collections import list_sources, names
    from ui.uploads import add_uploads, upload_folder

    settings, picked = uploads_home
    (picked / "harbour.md").write_text("# Harbour\n\nThe Gwadar harbour opened to container ships in 2007.\n", encoding="utf-8")
    (picked / "budget.xlsx").write_bytes(b"PK\x03\x04 not really a spreadsheet")
    seen = []
    reports = add_uploads([str(picked / "harbour.md"), {"path": str(picked / "budget.xlsx"), "orig_name": "budget.xlsx"}],
                          "ports", settings, embedder=FakeEmbedder(), on_report=seen.append)
    assert seen == reports
    by_name = {r.source.rsplit("/", 1)[-1]: r for r in reports}
    assert by_name["harbour.md"].status == "added" and by_name["harbour.md"].chunks
    assert by_name["budget.xlsx"].status == "skipped" and by_name["budget.xlsx"].failed
    assert "unsupported format .xlsx (pakus reads" in by_name["budget.xlsx"].reason  # the words of `pakus add`
    folder = upload_folder(settings, "ports")
    assert folder == settings.home.absolute() / "uploads" / "ports"
    assert sorted(p.name for p in folder.iterdir()) == ["harbour.md"]  # kept; the refused file is not
    assert "ports" in names(settings)
    [document] = list_sources(settings, "ports")
    assert document["source"] == str(folder / "harbour.md") and document["title"] == "Harbour"

    # The same name again with new content replaces the copy and updates the document.
    (picked / "harbour.md").write_text("# Harbour\n\nThe Gwadar harbour was dredged in 2021.\n", encoding="utf-8")
    [again] = add_uploads([str(picked / "harbour.md")], "ports", settings, embedder=FakeEmbedder())
    assert again.status == "updated"
    # A copy that cannot be indexed (empty) leaves the earlier file and its document in place.
    (picked / "harbour.md").write_bytes(b"")
    [empty] = add_uploads([str(picked / "harbour.md")], "ports", settings, embedder=FakeEmbedder())
    assert empty.failed and empty.reason == "empty file"
    assert "dredged in 2021" in (folder / "harbour.md").read_text(encoding="utf-8")
    assert len(list_sources(settings, "ports")) == 1 and sorted(p.name for p in folder.iterdir()) == ["harbour.md"]


def test_upload_limits_names_and_the_shipped_collection(uploads_home):
    from rag.collections import names
    from rag.errors import ConfigError
    from ui.uploads import add_uploads, safe_file_name, target_collection

    settings, picked = uploads_home
    big = picked / "big.txt"
    big.write_bytes(b"word " * 300_000)  # 1.4 MB
    [report] = add_uploads([str(big)], "large", settings, max_upload_mb=1, embedder=FakeEmbedder())
    assert report.failed and "1.4 MB is over this page's 1 MB upload limit (PAKUS_UI_MAX_UPLOAD_MB)" in report.reason
    assert "large" not in names(settings)  # nothing could be added: no empty collection left behind
    assert not (settings.home / "uploads" / "large").exists()

    with pytest.raises(InvalidInputError, match="ships with pakus"):
        target_collection("seeds", "")
    assert target_collection("seeds", " papers ") == "papers" and target_collection("cricket", None) == "cricket"
    for bad in ("../etc", "a/b", ".hidden", "x" * 65):
        with pytest.raises(ConfigError, match="invalid collection name"):
            target_collection("cricket", bad)
    with pytest.raises(InvalidInputError, match="choose one or more files"):
        add_uploads([], "cricket", settings)
    assert safe_file_name("../../.bashrc") == "bashrc" and safe_file_name("a\x00b.md") == "a_b.md"
    assert safe_file_name("...") == "upload" and safe_file_name("x" * 300 + ".pdf").endswith("x.pdf")


# --- the running app: a scripted bot -----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The real page on a loopback port, with a scripted bot slow enough for sessions to overlap."""
    from ui.app import build_app, serve

    settings = make_project(tmp_path_factory.mktemp("served"))
    bot = FakeBot(delay=0.02)
    app = build_app(bot_factory=lambda settings: bot, settings=settings)
    url, share_url = serve(app, "127.0.0.1", free_port())
    assert share_url is None
    yield url, bot
    app.close()


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def _texts(chat: list[dict]) -> list[str]:
    """The text of each chat message as the client receives it."""
    return ["".join(part.get("text", "") for part in m["content"]) if isinstance(m["content"], list) else m["content"] for m in chat]


def _value(output):
    """An output as the client receives it: a plain value, or a component update carrying one."""
    return output.get("value") if isinstance(output, dict) and output.get("__type__") == "update" else output


def _ask(client, question: str, collection: str = "seeds", k=2) -> tuple[list[list[dict]], str]:
    """Send a question as the page does; returns every chat state the answer streamed, and the explain view."""
    chat, box = client.predict(question, api_name="/show_question")
    assert _value(box) == "" and box["interactive"] is False  # locked until the answer is done
    assert "pk-pending" in _texts(chat)[-1]
    job = client.submit(k, collection, api_name="/answer_question")
    chat, explain, box = job.result(timeout=60)
    assert box["interactive"] is True
    states = [output[0] for output in job.outputs()]
    return states, _value(explain)


def test_answer_streams_then_shows_sources(served):
    url, bot = served
    client = _client(url)
    states, explain = _ask(client, "What is CSF?")
    streamed = [s for s in states if "pk-streaming" in _texts(s)[-1]]
    assert len(streamed) > 1  # several pieces before the end
    last = _texts(states[-1])
    assert last[0] == "What is CSF?"
    assert "pk-answered" in last[1] and 'class="pk-ref"' in last[1] and "<mark>" in last[1]
    assert "Fused" in explain


def test_follow_up_uses_the_session_history(served):
    url, bot = served
    client = _client(url)
    _ask(client, "What is CSF?")
    states, _ = _ask(client, "How much did it provide?")
    assert bot.asked[-1] == ("How much did it provide?", 1)
    assert "Searched for: <q>What is the Coalition Support Fund (CSF)?</q>" in _texts(states[-1])[-1]


def test_declined_question_is_not_an_error(served):
    url, _ = served
    states, explain = _ask(_client(url), "Who won the 2024 US presidential election?")
    last = _texts(states[-1])[-1]
    assert "pk-declined" in last and "pk-error" not in last
    assert "declined" in explain


@pytest.mark.parametrize(
    "question, message",
    [("", "the question is empty"), ("model missing", "run `pakus models`"), ("crash", "ZeroDivisionError")],
)
def test_errors_become_messages_and_the_page_keeps_working(served, question, message):
    url, _ = served
    client = _client(url)
    states, _ = _ask(client, question)
    last = _texts(states[-1])[-1]
    assert "pk-error" in last and message in last and "Traceback" not in last
    states, _ = _ask(client, "What is CSF?")
    assert "pk-answered" in _texts(states[-1])[-1]


def test_two_sessions_take_turns_and_do_not_mix(served):
    url, bot = served
    first, second = _client(url), _client(url)
    bot.most_at_once = 0
    first.predict("What is CSF?", api_name="/show_question")
    first_job = first.submit(2, "seeds", api_name="/answer_question")
    deadline = time.monotonic() + 30
    while not any("pk-streaming" in _texts(out[0])[-1] for out in first_job.outputs()):
        assert time.monotonic() < deadline, "the first answer never started streaming"
        time.sleep(0.02)
    chat, _ = second.predict("Tell me about CSF funding", api_name="/show_question")
    assert "Waiting for the model" in _texts(chat)[-1]  # says it waits its turn
    second_job = second.submit(2, "seeds", api_name="/answer_question")
    results = [job.result(timeout=60) for job in (first_job, second_job)]
    assert bot.most_at_once == 1
    chats = [_texts(chat) for chat, _, _ in results]
    assert chats[0][0] == "What is CSF?" and len(chats[0]) == 2
    assert chats[1][0] == "Tell me about CSF funding" and len(chats[1]) == 2
    assert all("pk-answered" in chat[1] for chat in chats)
    assert ("Tell me about CSF funding", 0) in bot.asked  # the second session has no history of the first


def test_clear_starts_over(served):
    url, bot = served
    client = _client(url)
    _ask(client, "What is CSF?")
    chat, explain, box = client.predict(api_name="/clear")
    assert chat == [] and "Ask a question" in _value(explain)
    _ask(client, "What is CSF?")
    assert bot.asked[-1] == ("What is CSF?", 0)  # no history after clearing


def test_clearing_during_an_answer_lets_the_next_question_through(served):
    url, bot = served
    client = _client(url)
    client.predict("What is CSF?", api_name="/show_question")
    job = client.submit(2, "seeds", api_name="/answer_question")
    deadline = time.monotonic() + 30
    while not any("pk-streaming" in _texts(out[0])[-1] for out in job.outputs()):
        assert time.monotonic() < deadline, "the answer never started streaming"
        time.sleep(0.02)
    client.predict(api_name="/clear")  # cancels the answer half-way
    started = time.monotonic()
    states, _ = _ask(_client(url), "What is CSF?")  # would wait forever if the cancelled answer kept its turn
    assert "pk-answered" in _texts(states[-1])[-1] and time.monotonic() - started < 20


def test_a_visitor_cannot_choose_the_backend(served):
    url, bot = served
    # What a script sends where the backend dropdown used to be is a collection name now, checked as one.
    states, _ = _ask(_client(url), "What is CSF?", collection="transformers")
    last = _texts(states[-1])[-1]
    assert "pk-error" in last and "no collection named &#x27;transformers&#x27;" in last
    assert bot.settings.backend == "llama-cpp"


# --- the running app: the real Bot on fakes --------------------------------------------------------


@pytest.fixture(scope="module")
def served_real(tmp_path_factory):
    """The page with the real Bot (retrieval, checks, collections) on the fake embedder and generator."""
    from ui.app import build_app, serve
    from ui.uploads import PageOptions

    settings = make_project(tmp_path_factory.mktemp("served-real"))
    generator = PassageGenerator()
    app = build_app(bot_factory=fake_models(generator), settings=settings, options=PageOptions(max_upload_mb=1))
    url, _ = serve(app, "127.0.0.1", free_port())
    yield url, settings, generator
    app.close()


def test_switching_collections_changes_header_documents_and_answers(served_real):
    url, settings, _ = served_real
    client = _client(url)
    states, _ = _ask(client, "Who won the championship trophy?", collection="seeds")
    assert "pk-answered" in _texts(states[-1])[-1] and "Cricket notes" in _texts(states[-1])[-1]  # the seeds' notes

    from rag.collections import set_k

    set_k(settings, "cricket", 3)  # the passages slider follows the collection's own k
    chat, header, documents, k = client.predict("cricket", api_name="/switch")  # (the documents box's label is not sent)
    set_k(settings, "cricket", None)
    assert k == 3
    assert "Answering from <b class=\"pk-coll\">cricket</b>: one document, “Cricket season”" in header
    assert "Pakistan" not in header and "cricket.md" in documents and "<td>markdown</td>" in documents
    assert "Now answering from cricket" in _texts(_value(chat))[-1] and chat["examples"] is None
    states, _ = _ask(client, "Who won the championship trophy?", collection="cricket")
    last = _texts(states[-1])[-1]
    assert "pk-answered" in last and "Cricket season" in last and "Lahore in 2019" in last

    chat, header, documents, k = client.predict("seeds", api_name="/switch")
    assert k == 2 and "3 documents" in header and "A Review of Aid to Pakistan" in header and "aid-review.md" in documents


def test_upload_through_the_page_reports_each_file_and_answers_from_it(served_real, tmp_path):
    from gradio_client import handle_file

    url, settings, _ = served_real
    client = _client(url)
    note = tmp_path / "harbour.md"
    note.write_text("# Harbour log\n\nThe Gwadar harbour opened to container ships in 2007.\n", encoding="utf-8")
    sheet = tmp_path / "budget.xlsx"
    sheet.write_bytes(b"PK\x03\x04 not a spreadsheet")
    job = client.submit([handle_file(str(note)), handle_file(str(sheet))], "harbours", "seeds", api_name="/add_files")
    log, dropdown, files, name = job.result(timeout=60)
    assert "harbour.md" in log and "added" in log and "budget.xlsx" in log and "unsupported format .xlsx" in log
    assert "1 of 2 files in <b>harbours</b>; 1 could not be added" in log
    assert _value(dropdown) == "harbours" and "harbours" in [c[1] for c in dropdown["choices"]]
    assert (settings.home / "uploads" / "harbours" / "harbour.md").is_file()
    states, _ = _ask(client, "When did the harbour open to container ships?", collection="harbours")
    last = _texts(states[-1])[-1]
    assert "pk-answered" in last and "Harbour log" in last and "2007" in last

    # More files into the open collection: its bot sees them at the next question.
    more = tmp_path / "quay.txt"
    more.write_text("The new quay at Pasni was finished in 2015.\n", encoding="utf-8")
    log, dropdown, _, _ = client.submit([handle_file(str(more))], "", "harbours", api_name="/add_files").result(timeout=60)
    assert "added <b>quay.txt</b>" in log
    states, _ = _ask(client, "When was the quay at Pasni finished?", collection="harbours")
    assert "Pasni was finished in 2015" in _texts(states[-1])[-1]


def test_uploads_are_bounded_in_size_by_the_server(served_real, tmp_path):
    import httpx

    url, settings, _ = served_real
    big = tmp_path / "big.txt"
    big.write_bytes(b"word " * 300_000)  # 1.4 MB, over this server's 1 MB
    with open(big, "rb") as handle:
        response = httpx.post(f"{url.rstrip('/')}/gradio_api/upload", files=[("files", ("big.txt", handle, "text/plain"))], timeout=30)
    assert response.status_code == 413 and "maximum allowed size" in response.text


def test_bad_input_is_one_line_in_the_page_and_no_traceback_in_the_log(served_real, tmp_path, capfd):
    import httpx
    from gradio_client import handle_file

    url, settings, _ = served_real
    client = _client(url)
    capfd.readouterr()
    for k, collection, message in [
        (1000, "seeds", "k (passages given to the model) must be a whole number from 1 to 10, got 1000"),
        ("many", "seeds", "must be a whole number from 1 to 10, got &#x27;many&#x27;"),
        (2.5, "seeds", "got 2.5"),
        (2, "nonsense", "no collection named &#x27;nonsense&#x27;"),
        (2, "../../etc", "invalid collection name"),
        (2, None, "choose a collection from the list"),
    ]:
        client.predict("Who won the championship trophy?", api_name="/show_question")
        chat, _, box = client.submit(k, collection, api_name="/answer_question").result(timeout=30)
        last = _texts(chat)[-1]
        assert "pk-error" in last and message in last, (k, collection, last)
        assert box["interactive"] is True

    note = tmp_path / "n.md"
    note.write_text("# N\n\nA note.\n", encoding="utf-8")
    log, *_ = client.predict([handle_file(str(note))], "", "seeds", api_name="/add_files")
    assert "ships with pakus" in log and "pk-upload-error" in log
    log, *_ = client.predict([handle_file(str(note))], "../x", "cricket", api_name="/add_files")
    assert "invalid collection name" in log
    log, *_ = client.predict([], "papers", "cricket", api_name="/add_files")
    assert "choose one or more files" in log
    chat, header, *_ = client.predict("nonsense", api_name="/switch")
    assert "no collection named" in _texts(_value(chat))[-1]
    # A file that was never uploaded: gradio refuses to hand it over, before our code runs.
    base = url.rstrip("/")
    response = httpx.post(f"{base}/gradio_api/run/add_files", timeout=30,
                          json={"data": [[{"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}], "x", "cricket"]})
    assert response.status_code >= 400 or "error" in response.text.lower()

    states, _ = _ask(client, "Who won the championship trophy?", collection="cricket")  # and it still answers
    assert "pk-answered" in _texts(states[-1])[-1]
    logged = capfd.readouterr()
    assert "Traceback" not in logged.err + logged.out, logged.err[-3000:]


# --- twenty visitors at once ------------------------------------------------------------------------


VISITORS = 20
VISITOR_LIMIT_S = 60  # every visitor has an answer or a "busy" within this


def _visit(url: str, question: str) -> tuple[str, float]:
    """One visitor: open the page's API, ask, wait. Returns what they got and how long it took."""
    from gradio_client.utils import QueueError

    started = time.monotonic()
    try:
        client = _client(url)
        client.predict(question, api_name="/show_question")
        chat, _, _ = client.submit(2, "cricket", api_name="/answer_question").result(timeout=VISITOR_LIMIT_S)
        last = _texts(chat)[-1]
        outcome = "answered" if "pk-answered" in last else f"other: {last[:200]}"
    except QueueError as error:
        outcome = f"busy: {error}"
    except Exception as error:  # noqa: BLE001 - reported below with the visitor's outcome
        outcome = f"failed: {type(error).__name__}: {error}"
    return outcome, time.monotonic() - started


def _visitors(url: str) -> tuple[list[str], list[float], float]:
    from concurrent.futures import ThreadPoolExecutor

    started = time.monotonic()
    with ThreadPoolExecutor(VISITORS) as pool:
        results = list(pool.map(lambda i: _visit(url, "Who won the championship trophy?"), range(VISITORS)))
    return [r[0] for r in results], [r[1] for r in results], time.monotonic() - started


@pytest.mark.parametrize("queue_size", [20, 3])
def test_twenty_visitors_at_once_get_an_answer_or_busy(tmp_path, queue_size, capfd):
    from ui.app import build_app, serve
    from ui.uploads import PageOptions

    settings = make_project(tmp_path)
    generator = PassageGenerator(delay=0.01)
    app = build_app(bot_factory=fake_models(generator), settings=settings, options=PageOptions(queue_size=queue_size))
    url, _ = serve(app, "127.0.0.1", free_port())
    try:
        outcomes, seconds, wall = _visitors(url)
        answered = outcomes.count("answered")
        busy = [o for o in outcomes if o.startswith("busy: ")]
        summary = (f"{VISITORS} visitors, queue {queue_size}: {answered} answered, {len(busy)} busy, "
                   f"slowest {max(seconds):.1f} s, median {sorted(seconds)[VISITORS // 2]:.1f} s, all done in {wall:.1f} s")
        assert answered + len(busy) == VISITORS, outcomes
        assert all("try again" in o for o in busy)
        assert max(seconds) < VISITOR_LIMIT_S
        assert generator.most_at_once == 1  # the in-process model answered one at a time
        if queue_size >= VISITORS:
            assert answered == VISITORS
        assert answered >= 1
        outcome, after = _visit(url, "Who won the championship trophy?")  # and then business as usual
        assert outcome == "answered" and after < 10
    finally:
        app.close()
    assert "Traceback" not in capfd.readouterr().err
    with capfd.disabled():  # the timings, for whoever runs this with -s
        print(f"\n{summary}")


def test_a_concurrent_backend_answers_several_at_once_up_to_the_bound(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from ui.app import build_app, serve
    from ui.uploads import PageOptions

    settings = make_project(tmp_path)
    generator = PassageGenerator(delay=0.05, concurrent=True)
    app = build_app(bot_factory=fake_models(generator), settings=settings, options=PageOptions(concurrency=3))
    url, _ = serve(app, "127.0.0.1", free_port())
    try:
        assert _visit(url, "Who won the championship trophy?")[0] == "answered"  # loads the bot
        generator.most_at_once = 0
        with ThreadPoolExecutor(6) as pool:
            outcomes = [o for o, _ in pool.map(lambda i: _visit(url, "Who won the championship trophy?"), range(6))]
        assert outcomes == ["answered"] * 6
        assert 2 <= generator.most_at_once <= 3
    finally:
        app.close()


def test_launch_is_loopback_only_unless_asked():
    import inspect

    from ui.app import launch

    parameters = inspect.signature(launch).parameters
    assert parameters["host"].default == "127.0.0.1" and parameters["share"].default is False
    assert parameters["port"].default == 7860


def test_a_taken_port_is_a_readable_error(project):
    from rag.errors import PakusError
    from ui.app import build_app, serve

    app = build_app(bot_factory=FakeBot, settings=project)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(PakusError, match="choose another with --port"):
            serve(app, "127.0.0.1", taken.getsockname()[1])
