"""The `pakus` command line. Results go to stdout, progress and errors to stderr.

Only click and the light modules are imported at the top: `pakus --help` must answer instantly, so
everything heavy is imported inside the command that needs it. Every `PakusError` becomes one line
on stderr and a non-zero exit code; nothing the user can cause prints a traceback.

The commands that change or list a collection's documents live in cli_collections.py and are
registered here, so that this group still lists every command.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import __version__
from .cli_collections import add, collections, remove, sources, sync
from .cli_options import collection_option, command_settings, echo_json
from .errors import InvalidInputError, PakusError
from .settings import BACKENDS

EXAMPLES = """
\b
Examples:
  pakus ask "What is CSF?"
  pakus ask "When did IMET cease operations?" --json
  pakus search "coalition support fund" -k 3
  pakus chat
  pakus ui --port 7860
  pakus index status
  pakus add ~/papers -c papers          your own PDFs, Word files, web pages, notes
  pakus ask "What does the 2021 report conclude?" -c papers
  pakus sources -c papers
  pakus doctor                          what is wrong with this installation, and the fix
  pakus model path                      the packaged model, for a server:
  python -m llama_cpp.server --model "$(pakus model path)" --port 8000 --interrupt_requests false
  PAKUS_BACKEND=openai PAKUS_OPENAI_BASE_URL=http://127.0.0.1:8000/v1 pakus ask "What is CSF?"
\b
Settings can also come from the environment: PAKUS_COLLECTION, PAKUS_HOME, PAKUS_K, PAKUS_BACKEND,
PAKUS_MODEL_PATH, PAKUS_CACHE_DIR, PAKUS_INDEX_DIR, PAKUS_SEEDS_DIR, PAKUS_THREADS, PAKUS_MAX_FILE_MB.
"""


def _read_question(question: str) -> str:
    """The question argument, or standard input when it is '-'; must be valid UTF-8."""
    if question == "-":
        data = sys.stdin.buffer.read()
        try:
            question = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError("standard input is not valid UTF-8 text; convert it to UTF-8 and try again") from None
    return question


def _quiet_stdout() -> None:
    """After a broken pipe (`pakus search X | head -1`), point stdout at /dev/null: Python would
    otherwise report the same error again when it flushes stdout on exit (the recipe of Python's
    `signal` documentation)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (in tests)
        pass


class _Group(click.Group):
    """Turns library errors and Ctrl-C into one line and an exit code, never a traceback."""

    def invoke(self, ctx):
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a reader that left early is noticed here, not at exit
            return result
        except BrokenPipeError:
            # The reader of our output has gone (`| head -1`): nothing to say, and nobody to say it
            # to. 141 is what a shell reports for a program stopped by SIGPIPE, like `yes | head -1`.
            _quiet_stdout()
            sys.exit(141)
        except PakusError as exc:
            click.echo(f"pakus: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("\npakus: interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug of ours: still one line, with a way to see the details
            if os.environ.get("PAKUS_DEBUG"):
                raise
            click.echo(f"pakus: unexpected error: {type(exc).__name__}: {exc} (set PAKUS_DEBUG=1 for the traceback)", err=True)
            sys.exit(1)


@click.group(cls=_Group, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pakus")
def main() -> None:
    """pakus: answers questions about your documents, on your machine, with citations you can check."""


# --- index -----------------------------------------------------------------------------------


@main.group()
def index() -> None:
    """Build the seeds' index, or inspect any collection's."""


@index.command("build")
@click.option("--force", is_flag=True, help="Convert and embed every document again, even unchanged ones.")
def index_build(force: bool) -> None:
    """Bring the seeds' index (index/) up to date with seeds/: only what changed is redone."""
    import time

    from .display import print_reports
    from .index import build_seeds

    started = time.perf_counter()
    settings = command_settings().with_overrides(collection="seeds")
    reports = build_seeds(settings, force=force, progress=True)
    print_reports(reports, settings.collection, time.perf_counter() - started, quiet_unchanged=False)
    if any(r.failed for r in reports):
        sys.exit(1)


@index.command("status")
@collection_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def index_status_command(collection: str | None, as_json: bool) -> None:
    """Documents, chunks, model, and whether the collection is up to date with its files."""
    from .index import index_status

    status = index_status(command_settings(collection=collection))
    if as_json:
        echo_json(status)
    else:
        from .display import print_status

        print_status(status)
    if not status["up_to_date"]:
        sys.exit(1)


# --- collections: add, sync, remove, sources, collections (cli_collections.py) ------------------

for _command in (add, sync, remove, sources, collections):
    main.add_command(_command)


# --- search ------------------------------------------------------------------------------------


@main.command()
@click.argument("query")
@collection_option
@click.option("-k", "k", type=int, default=5, show_default=True, help="Number of passages.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of hits.")
def search(query: str, collection: str | None, k: int, as_json: bool) -> None:
    """Show the passages that best match QUERY (no language model involved)."""
    from .bot import Bot

    hits = Bot(command_settings(collection=collection)).search(_read_question(query), k)
    if as_json:
        echo_json([h.to_dict() for h in hits])
        return
    from .display import print_hits

    print_hits(hits)


# --- ask / chat --------------------------------------------------------------------------------

_generation_options = [
    collection_option,
    click.option("-k", "k", type=int, default=None, help="Passages given to the model (default: PAKUS_K, else the collection's k, else 2)."),
    click.option("--backend", type=click.Choice(BACKENDS), default=None, help="Generator runtime (default llama-cpp, or PAKUS_BACKEND)."),
    click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
                 help="Another local model: a GGUF file, or a transformers folder for --backend transformers."),
]


def generation_options(function):
    for option in reversed(_generation_options):
        function = option(function)
    return function


@main.command()
@click.argument("question")
@generation_options
@click.option("--json", "as_json", is_flag=True, help="Print the Answer as one JSON object.")
@click.option("--explain", is_flag=True, help="Also print the retrieval scores, the prompt and the timings.")
def ask(question: str, collection: str | None, k: int | None, backend: str | None, model_path: Path | None, as_json: bool,
        explain: bool) -> None:
    """Answer QUESTION from the documents, citing the passages used ('-' reads standard input)."""
    from .bot import Bot
    from .display import stream_answer

    bot = Bot(command_settings(collection=collection, backend=backend, model_path=model_path, k=k))
    question = _read_question(question)
    if as_json:
        echo_json(bot.ask(question).to_dict())
        return
    stream_answer(bot.ask_stream(question), explain=explain)


@main.command()
@generation_options
def chat(collection: str | None, k: int | None, backend: str | None, model_path: Path | None) -> None:
    """Talk with the documents: follow-up questions understand the conversation so far."""
    from .bot import Bot, Chat
    from .display import run_chat

    run_chat(Chat(Bot(command_settings(collection=collection, backend=backend, model_path=model_path, k=k))))


# --- model -------------------------------------------------------------------------------------


@main.group()
def model() -> None:
    """The packaged language model (for an OpenAI-compatible server: --backend openai)."""


@model.command("path")
def model_path_command() -> None:
    """Print the packaged GGUF's path, assembling it first if needed (one time, 1.1 GB).

    \b
    Serve it to `--backend openai` (PAKUS_OPENAI_BASE_URL=http://127.0.0.1:8000/v1):
    python -m llama_cpp.server --model "$(pakus model path)" --host 127.0.0.1 --port 8000 --interrupt_requests false
    """
    from .generators.model_files import default_gguf_path

    click.echo(default_gguf_path(command_settings()))  # progress, if it assembles, goes to stderr


# --- doctor ------------------------------------------------------------------------------------


@main.command()
@click.option("--repair", is_flag=True, help="Also do the repairs that need no document (search files, interrupted writes, a damaged collection.json).")
@click.option("--quick", is_flag=True, help="Check the model's sampled blocks only, not its full sha256 (1.1 GB of reading).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: ok, and every finding.")
def doctor(repair: bool, quick: bool, as_json: bool) -> None:
    """Check the installation: libraries, folders, the model's hash, every collection's files.

    Prints what is wrong with the command that fixes it; exits 0 only when all is well.
    """
    from .doctor import run_checks

    findings = run_checks(command_settings(), full_model_hash=not quick, repair=repair)
    ok = all(f.ok for f in findings)
    if as_json:
        echo_json({"ok": ok, "findings": [f.to_dict() for f in findings]})
    else:
        from .display import print_findings

        print_findings(findings)
    if not ok:
        sys.exit(1)


# --- ui / eval ---------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback: only this machine).")
@click.option("--port", default=7860, show_default=True, type=int)
@click.option("--share", is_flag=True, help="Also publish the page through a public Gradio tunnel (off unless asked).")
@collection_option
def ui(host: str, port: int, share: bool, collection: str | None) -> None:
    """Open the chat page in your browser (Gradio, on this machine)."""
    from ui.app import launch

    launch(host=host, port=port, share=share, settings=command_settings(collection=collection))


@main.command("eval")
@click.argument("questions", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
@generation_options
def eval_command(questions: Path | None, as_json: bool, collection: str | None, k: int | None, backend: str | None,
                 model_path: Path | None) -> None:
    """Measure retrieval, answers, citations and speed on a question set (JSONL)."""
    from .evaluation import run_eval

    sys.exit(run_eval(questions, command_settings(collection=collection, backend=backend, model_path=model_path, k=k), as_json))


if __name__ == "__main__":
    main()
