"""The Gradio chat page: `build_app()` makes it, `launch()` serves it (what `pakus ui` calls).

This package is the only place that imports gradio, and it does so inside functions, so that
`import ui` (and `pakus --help`) stays instant.

Flow of one question: the text is shown in the chat at once (a quick, unqueued event), then the
answer streams in from a queued event that runs one at a time for the whole server, so a second
tab waits its turn instead of competing for the model.
"""

# No `from __future__ import annotations` here: gradio reads the `gr.SelectData` annotation of an
# event handler at run time to know that it wants the event's data.
import logging
import os
import threading

from rag.errors import PakusError
from rag.schema import Answer
from rag.settings import BACKENDS, Settings

from . import render
from .session import BotFactory, BotPool, BusyCounter, Conversation
from .theme import CSS, HEAD, theme

log = logging.getLogger(__name__)

EXAMPLES = [
    "What is CSF?",
    "When did IMET cease operations?",
    "Which dialogue lets both countries discuss nuclear safety?",
]

HEADER = """
<header id="pk-header">
  <div class="pk-title">Pakistan–US relations <span class="pk-tagline"><span class="pk-dot">· </span>ask the documents</span></div>
  <p class="pk-subtitle">Answers come only from two documents, each sentence with a numbered source you
  can open. When the documents don't say, the bot says so. Runs entirely on this machine.</p>
</header>
"""

EMPTY_CHAT = "**Ask a question about the documents**, or start with one of these:"

# Every event that calls the model shares this id, so at most one runs at a time in the process.
MODEL_QUEUE = "model"


def _warm_up(pool: BotPool) -> None:
    try:
        pool.get()
    except PakusError as error:  # the page shows the same message when a question is asked
        log.warning("could not load the model ahead of the first question: %s", error)
    except Exception:
        log.exception("could not load the model ahead of the first question")


def _outputs(conversation: Conversation, explain, question_box):
    """The values of [conversation, chatbot, explain, question], the outputs of the answer event."""
    return conversation, list(conversation.messages), explain, question_box


def build_app(bot_factory: BotFactory | None = None, settings: Settings | None = None, *, warm_up: bool = False):
    """The chat page as a `gr.Blocks`. `bot_factory(settings)` builds a Bot; tests pass a fake.

    With `warm_up`, the default backend's model starts loading in the background right away, so
    the first visitor does not wait for it (a question asked meanwhile waits for the load to end).
    """
    # Nothing may leave the machine: gradio's telemetry calls are guarded by this variable as well
    # as by the Blocks flag below. Set before gradio is imported; an explicit user choice wins.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    settings = settings or Settings.from_env()
    pool = BotPool(settings, bot_factory)
    answering = BusyCounter()
    if warm_up:
        threading.Thread(target=_warm_up, args=(pool,), name="pakus-warm-up", daemon=True).start()

    def show_question(conversation: Conversation | None, text: str):
        """Put the question in the chat and lock the input until the answer is done."""
        conversation = conversation or Conversation()
        text = (text or "").strip()
        conversation.pending = text
        if text:
            conversation.messages.append({"role": "user", "content": text})
        status = "Waiting for the model: another question is being answered…" if answering.busy else "Searching the documents…"
        conversation.messages.append({"role": "assistant", "content": render.render_pending(status)})
        return conversation, list(conversation.messages), gr.Textbox(value="", interactive=False)

    def show_example(conversation: Conversation | None, event: gr.SelectData):
        return show_question(conversation, event.value.get("text", ""))

    def stream(conversation: Conversation, question: str, k: int, backend: str):
        """The states of the last chat message, from "searching" to the finished answer."""
        last = conversation.messages[-1]
        if not pool.ready(backend):
            last["content"] = render.render_pending("Loading the documents and the model (only the first question waits for this)…")
        else:
            last["content"] = render.render_pending("Searching the documents…")
        yield _outputs(conversation, gr.skip(), gr.skip())
        chat = conversation.chat_for(pool.get(backend), backend)
        prefix = conversation.next_prefix()
        rewritten = None
        if chat.history:
            # A follow-up is first rewritten into a stand-alone question (a short model call);
            # showing it before the answer starts lets the reader catch a wrong reading early.
            last["content"] = render.render_pending("Reading the follow-up in context…")
            yield _outputs(conversation, gr.skip(), gr.skip())
            rewritten = chat.rewrite(question)
            last["content"] = render.render_pending("Searching the documents…", question, rewritten)
            yield _outputs(conversation, gr.skip(), gr.skip())
        text = ""
        final: Answer | None = None
        for item in chat.ask_stream(question, k=k, rewritten=rewritten):
            if isinstance(item, Answer):
                final = item
                continue
            text += item
            last["content"] = render.render_streaming(text, question, rewritten)
            yield _outputs(conversation, gr.skip(), gr.skip())
        if final is None:  # the Bot's contract is to end with an Answer; say so rather than hang
            raise RuntimeError("the bot finished without an answer")
        conversation.last_answer = final
        last["content"] = render.render_answer(final, prefix)
        yield _outputs(conversation, render.render_explain(final), gr.Textbox(interactive=True))

    def answer(conversation: Conversation, k: float, backend: str):
        """Stream the answer into the last chat message; an error becomes a readable message there."""
        try:
            with answering:
                yield from stream(conversation, conversation.pending, int(k), backend)
            return
        except PakusError as error:
            message = str(error)
        except Exception as error:  # a bug must not take the page down; the trace goes to the log
            log.exception("answering %r failed", conversation.pending)
            message = f"Something went wrong inside pakus ({type(error).__name__}: {error}). The server log has the details."
        conversation.messages[-1]["content"] = render.render_error(message)
        yield _outputs(conversation, gr.skip(), gr.Textbox(interactive=True))

    def clear(conversation: Conversation | None):
        if conversation is not None and conversation.chat is not None:
            conversation.chat.clear()
        return Conversation(), [], render.render_explain(None), gr.Textbox(value="", interactive=True)

    with gr.Blocks(title="pakus · Pakistan–US relations", analytics_enabled=False) as app:
        conversation = gr.State(None)
        gr.HTML(HEADER, elem_id="pk-header-block")
        chatbot = gr.Chatbot(
            elem_id="pk-chat",
            show_label=False,
            height="min(64vh, 620px)",
            placeholder=EMPTY_CHAT,
            examples=[{"text": q} for q in EXAMPLES],
            latex_delimiters=[],  # passages are full of "$33 billion"; no maths here
            feedback_options=None,
            buttons=[],
            layout="panel",
            autoscroll=True,
        )
        with gr.Row(elem_id="pk-composer", equal_height=True):
            question = gr.Textbox(
                show_label=False,
                placeholder="Type a question…",
                elem_id="pk-question",
                scale=8,
                max_lines=4,
                submit_btn="Ask",
                autofocus=True,
            )
            clear_button = gr.Button("Clear", elem_id="pk-clear", variant="secondary", scale=0, min_width=80)
        with gr.Accordion("Settings and explain", open=False, elem_id="pk-settings"):
            with gr.Row():
                k = gr.Slider(1, max(10, settings.k), value=settings.k, step=1, label="Passages given to the model (k)")
                backend = gr.Dropdown(list(BACKENDS), value=settings.backend, label="Backend")
            gr.Markdown("**Explain the last answer:** the passages retrieved, their scores, and the timings.")
            explain = gr.HTML(render.render_explain(None), elem_id="pk-explain")

        # The event names below are for tests and scripts; the supported API is the `rag` package,
        # so they stay out of the generated API page.
        quick = dict(queue=False, api_visibility="undocumented")
        outputs = [conversation, chatbot, explain, question]
        shown_events = {
            "question": question.submit(show_question, [conversation, question], [conversation, chatbot, question], api_name="show_question", **quick),
            "example": chatbot.example_select(show_example, [conversation], [conversation, chatbot, question], api_name="show_example", **quick),
        }
        answer_events = [
            shown.then(
                answer,
                [conversation, k, backend],
                outputs,
                api_name=f"answer_{name}",
                api_visibility="undocumented",
                concurrency_limit=1,
                concurrency_id=MODEL_QUEUE,
                show_progress="hidden",  # the message itself says searching / waiting / streaming
            )
            for name, shown in shown_events.items()
        ]
        # The chat window's own trash icon and the Clear button do the same thing.
        clear_button.click(clear, [conversation], outputs, api_name="clear", cancels=answer_events, **quick)
        chatbot.clear(clear, [conversation], outputs, api_name="clear_chat", cancels=answer_events, **quick)
    return app


def serve(app, host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> tuple[str, str | None]:
    """Start serving `app` in the background; returns the local address and the share link, if any.

    `launch()` uses this and then waits; tests use it to run the page on a free port.
    """
    try:
        _, local_url, share_url = app.launch(
            server_name=host,
            server_port=port,
            share=share,
            prevent_thread_lock=True,
            quiet=True,
            ssr_mode=False,  # no Node server: one process, nothing else listening
            footer_links=[],
            theme=theme(),
            css=CSS,
            head=HEAD,
        )
    except OSError:
        # gradio's own message suggests its environment variables; ours names the pakus option.
        raise PakusError(f"cannot listen on {host}:{port}: the port is in use or not allowed; choose another with --port") from None
    return local_url, share_url


def launch(host: str = "127.0.0.1", port: int = 7860, share: bool = False, settings: Settings | None = None) -> None:
    """Serve the page until interrupted. Loopback only unless told otherwise; a public link only with share."""
    app = build_app(settings=settings or Settings.from_env(), warm_up=True)
    _, share_url = serve(app, host, port, share)
    # Name the address to type, also when listening on every interface.
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    print(f"pakus: open http://{shown_host}:{port}/ in your browser (Ctrl+C to stop)", flush=True)
    if share_url:
        print(f"pakus: public link, usable by anyone who has it: {share_url}", flush=True)
    try:
        app.block_thread()
    finally:
        app.close()
