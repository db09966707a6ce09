"""The chat's events, from a question sent to its answer: the question shown at once, the answer
streamed into the same chat message, a full queue or a failure said there in one line, and the
chat cleared. app.py lays out the page and wires these events to it (which are queued, and how).

The inputs arrive unchecked by gradio: each value a visitor's browser (or script) sends is checked
here (`check_k`, `check_collection`), and a bad one is answered in the chat, in one line.
"""

# No `from __future__ import annotations` here: gradio reads the `gr.SelectData` annotation of an
# event handler at run time to know that it wants the event's data.
import logging
from collections.abc import Callable
from typing import NamedTuple

from rag.collections import require
from rag.errors import InvalidInputError, PakusError
from rag.schema import Answer
from rag.settings import Settings

from . import render
from .session import AnswerGate, BotPool, Conversation

log = logging.getLogger(__name__)

BUSY = "The page is busy answering other visitors' questions; try again in a minute."


def _outputs(conversation: Conversation, explain, question_box):
    """The values of [conversation, chatbot, explain, question], the outputs of the answer event."""
    return conversation, list(conversation.messages), explain, question_box


def check_k(value, most: int) -> int:
    """The number of passages as a visitor (or a script calling the page's API) sent it."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise InvalidInputError(f"k (passages given to the model) must be a whole number from 1 to {most}, got {value!r}")
    return value


def check_collection(settings: Settings, value) -> str:
    """The collection as a visitor (or a script calling the page's API) sent it."""
    if not isinstance(value, str):
        raise InvalidInputError("choose a collection from the list")
    require(settings, value.strip())  # a clear error naming the collections there are
    return value.strip()


class ChatEvents(NamedTuple):
    """The handlers `build_app` wires to the page, each made once per page: gradio's default
    concurrency group of an event is keyed by its function, so events sharing one share a group."""

    show_question: Callable
    show_example: Callable
    answer: Callable
    after_failure: Callable
    clear: Callable


def chat_events(settings: Settings, pool: BotPool, gate: AnswerGate, k_most: int) -> ChatEvents:
    """The chat's handlers for one page: `pool` gives each collection's bot, `gate` lets answers
    through to the model, `k_most` is the most passages a visitor may ask for."""
    import gradio as gr  # already imported by build_app, after it turned gradio's telemetry off

    def show_question(conversation: Conversation | None, text):
        """Put the question in the chat and lock the input until the answer is done."""
        conversation = conversation or Conversation()
        text = text.strip() if isinstance(text, str) else ""
        conversation.pending = text
        if text:
            conversation.messages.append({"role": "user", "content": text})
        if gate.busy:
            status = ("Waiting for the model: it answers one question at a time, and another one is being answered…"
                      if gate.limit == 1 else "Waiting for the model: it is answering as many questions as it can at once…")
        else:
            status = "Searching the documents…"
        conversation.messages.append({"role": "assistant", "content": render.render_pending(status)})
        return conversation, list(conversation.messages), gr.Textbox(value="", interactive=False)

    def show_example(conversation: Conversation | None, event: gr.SelectData):
        value = event.value if isinstance(event.value, dict) else {}
        return show_question(conversation, value.get("text", ""))

    def stream(conversation: Conversation, bot, collection: str, question: str, k: int):
        """The states of the last chat message, from "searching" to the finished answer."""
        last = conversation.messages[-1]
        last["content"] = render.render_pending("Searching the documents…")
        yield _outputs(conversation, gr.skip(), gr.skip())
        chat = conversation.chat_for(bot, collection)
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

    def answer(conversation: Conversation | None, k, collection):
        """Stream the answer into the last chat message; an error becomes a readable message there.

        The inputs arrive unchecked by gradio (preprocess=False): a visitor's script may send any
        value, and each bad one is answered here in one line instead of a traceback in the log.
        """
        conversation = conversation or Conversation()
        if not conversation.messages or conversation.messages[-1].get("role") != "assistant":
            conversation.messages.append({"role": "assistant", "content": ""})
        try:
            k = check_k(k, k_most)
            name = check_collection(settings, collection)
            if not pool.ready(name):
                conversation.messages[-1]["content"] = render.render_pending(
                    "Loading the documents and the model (only the first question waits for this)…")
                yield _outputs(conversation, gr.skip(), gr.skip())
            with pool.use(name) as bot, gate.turn(pool.concurrent()):
                yield from stream(conversation, bot, name, conversation.pending, k)
            return
        except PakusError as error:
            message = str(error)
        except Exception as error:  # a bug must not take the page down; the trace goes to the log
            log.exception("answering %r failed", conversation.pending)
            message = f"Something went wrong inside pakus ({type(error).__name__}: {error}). The server log has the details."
        conversation.messages[-1]["content"] = render.render_error(message)
        yield _outputs(conversation, gr.skip(), gr.Textbox(interactive=True))

    def after_failure(conversation: Conversation | None):
        """The answer could not even join the line (the queue is full): say so, and unlock the input."""
        conversation = conversation or Conversation()
        if conversation.messages and "pk-pending" in conversation.messages[-1].get("content", ""):
            conversation.messages[-1]["content"] = render.render_error(BUSY)
        return conversation, list(conversation.messages), gr.Textbox(interactive=True)

    def clear(conversation: Conversation | None):
        collection = conversation.collection if conversation is not None else None
        if conversation is not None and conversation.chat is not None:
            conversation.chat.clear()
        return Conversation(collection=collection), [], render.render_explain(None), gr.Textbox(value="", interactive=True)

    return ChatEvents(show_question, show_example, answer, after_failure, clear)
