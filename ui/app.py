"""The Gradio chat page: `build_app()` makes it, `launch()` serves it (what `pakus ui` calls).

This package is the only place that imports gradio, and it does so inside functions, so that
`import ui` (and `pakus --help`) stays instant.

Flow of one question: the text is shown in the chat at once (a quick, unqueued event), then the
answer streams in from a queued event. Answers wait in one line for the whole server: an
in-process model answers one at a time, a backend whose generator is `concurrent` (a server) up to
PAKUS_UI_CONCURRENCY at once; at most PAKUS_UI_QUEUE_SIZE wait, and a visitor beyond that is told
that the page is busy. A tab that asks while the model is taken says that it waits its turn.

The page answers from one collection at a time, chosen by each visitor from the list (the first one
is the operator's, `pakus ui -c NAME`); bots of all collections share the loaded models. Visitors
can add files to a collection, or make a new one, through the same checks as `pakus add` (see
`ui.uploads`). The backend and model are the operator's: no visitor input reaches them.

Every value a visitor's browser (or script) sends is checked here or in `ui.answering` (the chat's
events), and a bad one is answered with a one-line message in the page: gradio's own checks would
raise, and write a traceback to the log.
"""

# No `from __future__ import annotations` here (nor in answering.py): gradio reads the annotations
# of an event handler at run time (`gr.SelectData`) to know what it wants passed.
import logging
import os
import queue
import threading
import time

from rag.collections import DEFAULT, answer_k, directory, names, read_info, validate_name
from rag.errors import InvalidInputError, PakusError
from rag.settings import Settings

from . import render, render_collection, uploads
# BUSY and check_k moved to answering.py with the chat's events; still importable from here.
from .answering import BUSY, chat_events, check_collection, check_k  # noqa: F401
from .session import AnswerGate, BotFactory, BotPool, Conversation
from .theme import CSS, HEAD, theme
from .uploads import PageOptions

log = logging.getLogger(__name__)

# Questions offered on an empty chat, per collection (only the shipped one has any).
EXAMPLES = {
    DEFAULT: [
        "What is CSF?",
        "When did IMET cease operations?",
        "Which dialogue lets both countries discuss nuclear safety?",
    ],
}

EMPTY_CHAT = "**Ask a question about the documents**"

# Every event that calls the model shares this id: the answers of the whole process wait in one line.
MODEL_QUEUE = "model"
UPLOAD_QUEUE = "upload"


def _warm_up(pool: BotPool, collection: str) -> None:
    try:
        pool.get(collection)
    except PakusError as error:  # the page shows the same message when a question is asked
        log.warning("could not load the model ahead of the first question: %s", error)
    except Exception:
        log.exception("could not load the model ahead of the first question")


def build_app(bot_factory: BotFactory | None = None, settings: Settings | None = None, *, warm_up: bool = False,
              options: PageOptions | None = None):
    """The chat page as a `gr.Blocks`. `bot_factory(settings)` builds a Bot; tests pass a fake.

    `settings` are the operator's (`pakus ui`): the backend, the model and the collection shown
    first. Visitors choose the collection and k; nothing a visitor sends changes the backend.
    With `warm_up`, the models start loading in the background right away, so the first visitor
    does not wait for them (a question asked meanwhile waits for the load to end).
    """
    # Nothing may leave the machine: gradio's telemetry calls are guarded by this variable as well
    # as by the Blocks flag below. Set before gradio is imported; an explicit user choice wins.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from rag.collections import list_sources
    from rag.converters.base import supported_suffixes

    class Page(gr.Blocks):
        async def preprocess_data(self, *args, **kwargs):
            """What gradio itself refuses before any handler runs (a file that was never uploaded,
            a malformed value, the wrong number of values) is answered as one line, not logged
            as a traceback: it is a visitor's script, not a fault of the server."""
            try:
                return await super().preprocess_data(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as error:
                log.info("refused a request: %s", error)
                raise gr.Error(" ".join(str(error).split())[:300] or type(error).__name__, print_exception=False) from None

    settings = settings or Settings.from_env()
    options = options or PageOptions.from_env()
    pool = BotPool(settings, bot_factory)
    gate = AnswerGate(options.concurrency)
    k_most = max(10, settings.k or 0)
    if warm_up:
        threading.Thread(target=_warm_up, args=(pool, settings.collection), name="pakus-warm-up", daemon=True).start()
    # The chat's handlers, from a question to its answer (answering.py); those below are the page's
    # own: the collection shown, its documents, uploads.
    show_question, show_example, answer, after_failure, clear = chat_events(settings, pool, gate, k_most)

    def collection_names(current: str | None = None) -> list[str]:
        found = names(settings)
        for extra in (current, settings.collection):  # one that is not there (yet) stays choosable
            if extra and extra not in found:
                found.append(extra)
        return found

    def describe(name: str) -> tuple[list | None, str | None]:
        try:
            return list_sources(settings, name), None
        except PakusError as error:
            return None, str(error)
        except Exception as error:
            log.exception("listing the documents of %r failed", name)
            return None, f"{type(error).__name__}: {error}"

    def documents_label(documents: list | None) -> str:
        return f"Documents ({len(documents):,}) · add files" if documents else "Documents · add files"

    def chat_window(name: str, messages):
        examples = EXAMPLES.get(name)
        placeholder = EMPTY_CHAT + (", or start with one of these:" if examples else f" in {name}.")
        return gr.Chatbot(value=list(messages), examples=[{"text": q} for q in examples] if examples else None,
                          placeholder=placeholder)

    def collection_view(value):
        """[header, documents, documents box] for a collection."""
        try:
            name = validate_name(value)
        except PakusError as error:
            return render_collection.render_header(str(value), None, str(error)), render_collection.render_documents("", None, str(error)), gr.skip()
        documents, problem = describe(name)
        return (render_collection.render_header(name, documents, problem), render_collection.render_documents(name, documents, problem),
                gr.Accordion(label=documents_label(documents)))

    def collection_k(value):
        """The slider's value for a collection: the k its questions get unless the visitor moves it."""
        try:
            info = read_info(directory(settings, validate_name(value)))
        except PakusError:
            info = None
        return min(answer_k(settings, info), k_most)

    def on_load(value):
        """A page (re)loaded: the collections as they are now (another tab or `pakus add` may have made one)."""
        value = value if isinstance(value, str) and value else settings.collection
        return (gr.Dropdown(choices=collection_names(value), value=value), *collection_view(value), collection_k(value))

    def switch(conversation: Conversation | None, value):
        """Answer from another collection from now on: a new history, and a note in the chat."""
        conversation = conversation or Conversation()
        try:
            name = check_collection(settings, value)
        except PakusError as error:
            conversation.messages.append({"role": "assistant", "content": render.render_error(str(error))})
            return conversation, list(conversation.messages), *collection_view(value), gr.skip()
        if name != conversation.collection:
            if conversation.collection is not None and conversation.messages:
                conversation.messages.append({"role": "assistant", "content": render.render_note(
                    f"Now answering from {name}. Questions from here on are read without the earlier ones.")})
            conversation.chat = None
            conversation.collection = name
        return conversation, chat_window(name, conversation.messages), *collection_view(name), collection_k(name)

    def add_files(files, new_name, current):
        """Add uploaded files to the collection (a new one when a name is typed), reporting each file
        as it is done; then show that collection."""
        started = time.monotonic()
        try:
            name = uploads.target_collection(current if isinstance(current, str) else None,
                                             new_name if isinstance(new_name, str) else None)
            if files is not None and not isinstance(files, list):
                files = [files]
            if not files:
                raise InvalidInputError("choose one or more files to add first")
            for item in files:
                uploads.uploaded(item)  # each one checked before any is copied
        except PakusError as error:
            yield render_collection.render_upload("", [], 0, error=str(error)), gr.skip(), gr.skip(), gr.skip()
            return
        reports: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            # In a thread of its own, so that the page shows each file as it is done; it finishes
            # (and the collection's bot is renewed) even when the visitor closes the page meanwhile.
            try:
                uploads.add_uploads(files, name, settings, max_upload_mb=options.max_upload_mb,
                                    embedder=pool.embedder(), on_report=reports.put)
            except PakusError as error:
                outcome["error"] = str(error)
            except Exception as error:
                log.exception("adding uploaded files to %r failed", name)
                outcome["error"] = f"Something went wrong inside pakus ({type(error).__name__}: {error}). The server log has the details."
            finally:
                pool.changed(name)
                reports.put(None)

        threading.Thread(target=work, name="pakus-upload", daemon=True).start()
        done: list = []
        while True:
            try:
                item = reports.get(timeout=1.0)
            except queue.Empty:
                item = False
            if item is None:
                break
            if item is not False:
                done.append(item)
            yield render_collection.render_upload(name, done, len(files), seconds=time.monotonic() - started), gr.skip(), gr.skip(), gr.skip()
        seconds = time.monotonic() - started
        if "error" in outcome:
            yield render_collection.render_upload(name, done, len(files), error=outcome["error"]), gr.skip(), gr.skip(), gr.skip()
            return
        shown = name if name in names(settings) else current  # nothing added to a new name: stay where we were
        yield (render_collection.render_upload(name, done, len(files), done=True, seconds=seconds),
               gr.Dropdown(choices=collection_names(shown), value=shown), None, "")

    with Page(title="pakus · ask the documents", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        conversation = gr.State(None)
        documents, problem = describe(settings.collection)
        with gr.Row(elem_id="pk-top", equal_height=False):
            header = gr.HTML(render_collection.render_header(settings.collection, documents, problem), elem_id="pk-header-block",
                             scale=4, min_width=300)
            collection = gr.Dropdown(collection_names(), value=settings.collection, label="Collection",
                                     elem_id="pk-collection", scale=1, min_width=180, filterable=False)
        examples = EXAMPLES.get(settings.collection)
        chatbot = gr.Chatbot(
            elem_id="pk-chat",
            show_label=False,
            height="min(62vh, 600px)",
            placeholder=EMPTY_CHAT + (", or start with one of these:" if examples else f" in {settings.collection}."),
            examples=[{"text": q} for q in examples] if examples else None,
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
        with gr.Accordion(documents_label(documents), open=False, elem_id="pk-documents") as documents_box:
            documents_view = gr.HTML(render_collection.render_documents(settings.collection, documents, problem), elem_id="pk-docs")
            formats = ", ".join("." + s.lstrip(".") for s in supported_suffixes())
            with gr.Row(elem_id="pk-upload-row", equal_height=False):
                files = gr.File(label=f"Add files, up to {options.max_upload_mb} MB each", file_count="multiple",
                                type="filepath", elem_id="pk-files", scale=3, min_width=240, height=140)
                with gr.Column(scale=2, min_width=220):
                    new_name = gr.Textbox(label="Into a new collection (optional)", max_lines=1, elem_id="pk-new-name",
                                          placeholder="a name such as my-papers; empty: this collection")
                    add_button = gr.Button("Add files", variant="primary", elem_id="pk-add")
            gr.HTML(f'<p class="pk-hint">Reads {formats}. Files are kept on this machine, in the pakus data folder, '
                    "so their passages can be opened again.</p>", elem_id="pk-upload-hint")
            upload_log = gr.HTML("", elem_id="pk-upload-log")
        with gr.Accordion("Settings and explain", open=False, elem_id="pk-settings"):
            k = gr.Slider(1, k_most, value=collection_k(settings.collection), step=1,
                          label="Passages given to the model (k)")
            gr.Markdown(f"**Model:** {settings.backend}{' · ' + settings.model_path.name if settings.model_path else ''}, "
                        "chosen when this page was started.", elem_id="pk-model")
            gr.Markdown("**Explain the last answer:** the passages retrieved, their scores, and the timings.")
            explain = gr.HTML(render.render_explain(None), elem_id="pk-explain")

        # The event names below are for tests and scripts; the supported API is the `rag` package,
        # so they stay out of the generated API page.
        quick = dict(queue=False, api_visibility="undocumented")
        view = [header, documents_view, documents_box]
        app.load(on_load, [collection], [collection, *view, k], api_name="load", preprocess=False, **quick)
        collection.change(switch, [conversation, collection], [conversation, chatbot, *view, k], api_name="switch",
                          preprocess=False, **quick)
        outputs = [conversation, chatbot, explain, question]
        shown_events = {
            "question": question.submit(show_question, [conversation, question], [conversation, chatbot, question],
                                        api_name="show_question", preprocess=False, **quick),
            "example": chatbot.example_select(show_example, [conversation], [conversation, chatbot, question],
                                              api_name="show_example", **quick),
        }
        answer_events = []
        for name, shown in shown_events.items():
            answering = shown.then(
                answer,
                [conversation, k, collection],
                outputs,
                api_name=f"answer_{name}",
                api_visibility="undocumented",
                preprocess=False,  # checked by `answer`, which answers a bad value in one line
                concurrency_limit=options.concurrency,  # AnswerGate lets one through for an in-process model
                concurrency_id=MODEL_QUEUE,
                show_progress="hidden",  # the message itself says searching / waiting / streaming
            )
            answering.failure(after_failure, [conversation], [conversation, chatbot, question], **quick)
            answer_events.append(answering)
        # The chat window's own trash icon and the Clear button do the same thing.
        clear_button.click(clear, [conversation], outputs, api_name="clear", cancels=answer_events, **quick)
        chatbot.clear(clear, [conversation], outputs, api_name="clear_chat", cancels=answer_events, **quick)
        adding = add_button.click(add_files, [files, new_name, collection], [upload_log, collection, files, new_name],
                                  api_name="add_files", api_visibility="undocumented", preprocess=False,
                                  concurrency_limit=1, concurrency_id=UPLOAD_QUEUE, show_progress="hidden")
        adding.then(collection_view, [collection], view, preprocess=False, **quick)
    app.queue(max_size=options.queue_size)
    app.pakus_options = options
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
            # Checked by the server while the file arrives: a larger upload is refused, not stored.
            max_file_size=getattr(app, "pakus_options", PageOptions()).max_upload_mb * 1024 * 1024,
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
