"""The chat page without a browser or a model: HTML rendering, and the running app driven over its
event API with a scripted bot (several sessions, errors, clearing)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import free_port

from rag.errors import InvalidInputError, ModelMissingError
from rag.schema import Answer, Chunk, Citation, Hit
from rag.settings import BACKENDS, Settings
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


def test_import_ui_does_not_import_gradio():
    code = "import sys, ui, ui.app, ui.render, ui.session; assert 'gradio' not in sys.modules, 'gradio imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_app_builds_with_a_fake_bot():
    import gradio as gr

    from ui.app import build_app

    app = build_app(bot_factory=lambda settings: FakeBot(settings), settings=Settings())
    assert isinstance(app, gr.Blocks)
    blocks = list(app.blocks.values())
    accordion = next(b for b in blocks if isinstance(b, gr.Accordion))
    assert accordion.open is False
    dropdown = next(b for b in blocks if isinstance(b, gr.Dropdown))
    assert [choice[1] for choice in dropdown.choices] == list(BACKENDS)
    assert any(isinstance(b, gr.State) for b in blocks)


def test_bot_pool_builds_one_bot_per_backend():
    from ui.session import BotPool

    built = []
    pool = BotPool(Settings(), lambda settings: built.append(settings.backend) or FakeBot(settings))
    assert pool.get() is pool.get("llama-cpp")
    assert pool.get("transformers") is not pool.get("llama-cpp")
    assert built == ["llama-cpp", "transformers"]


def test_launch_is_loopback_only_unless_asked():
    import inspect

    from ui.app import launch

    parameters = inspect.signature(launch).parameters
    assert parameters["host"].default == "127.0.0.1" and parameters["share"].default is False
    assert parameters["port"].default == 7860


def test_a_taken_port_is_a_readable_error():
    from rag.errors import PakusError
    from ui.app import build_app, serve

    app = build_app(bot_factory=FakeBot, settings=Settings())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(PakusError, match="choose another with --port"):
            serve(app, "127.0.0.1", taken.getsockname()[1])


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


@pytest.fixture(scope="module")
def served():
    """The real page on a loopback port, with a scripted bot slow enough for sessions to overlap."""
    from ui.app import build_app, serve

    bot = FakeBot(delay=0.02)
    app = build_app(bot_factory=lambda settings: bot, settings=Settings())
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


def _ask(client, question: str) -> tuple[list[list[dict]], str]:
    """Send a question as the page does; returns every chat state the answer streamed, and the explain view."""
    chat, box = client.predict(question, api_name="/show_question")
    assert _value(box) == "" and box["interactive"] is False  # locked until the answer is done
    assert "pk-pending" in _texts(chat)[-1]
    job = client.submit(3, "llama-cpp", api_name="/answer_question")
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
    first_job = first.submit(3, "llama-cpp", api_name="/answer_question")
    deadline = time.monotonic() + 30
    while not any("pk-streaming" in _texts(out[0])[-1] for out in first_job.outputs()):
        assert time.monotonic() < deadline, "the first answer never started streaming"
        time.sleep(0.02)
    chat, _ = second.predict("Tell me about CSF funding", api_name="/show_question")
    assert "Waiting for the model" in _texts(chat)[-1]  # says it waits its turn
    second_job = second.submit(3, "llama-cpp", api_name="/answer_question")
    results = [job.result(timeout=60) for job in (first_job, second_job)]
    assert bot.most_at_once == 1
    chats = [_texts(chat) for chat, _, _ in results]
    assert chats[0][0] == "What is CSF?" and len(chats[0]) == 2
    assert chats[1][0] == "Tell me about CSF funding" and len(chats[1]) == 2
    assert all("pk-answered" in chat[1] for chat in chats)
    assert ("Tell me about CSF funding", 0) in bot.asked  # the second session has no history of the first


def test_switching_backend_keeps_the_conversation(served):
    url, bot = served
    client = _client(url)
    _ask(client, "What is CSF?")
    client.predict("How much did it provide?", api_name="/show_question")
    chat, _, _ = client.submit(3, "transformers", api_name="/answer_question").result(timeout=60)
    assert bot.asked[-1] == ("How much did it provide?", 1)
    assert "pk-answered" in _texts(chat)[-1]


def test_clear_starts_over(served):
    url, bot = served
    client = _client(url)
    _ask(client, "What is CSF?")
    chat, explain, box = client.predict(api_name="/clear")
    assert chat == [] and "Ask a question" in _value(explain)
    _ask(client, "What is CSF?")
    assert bot.asked[-1] == ("What is CSF?", 0)  # no history after clearing
