"""The `pakus` command line. Results go to stdout, progress and errors to stderr.

Only click and the light modules are imported at the top: `pakus --help` must answer instantly, so
everything heavy is imported inside the command that needs it. Every `PakusError` becomes one line
on stderr and a non-zero exit code; nothing the user can cause prints a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from . import __version__
from .errors import InvalidInputError, PakusError
from .settings import BACKENDS, Settings

EXAMPLES = """
\b
Examples:
  pakus ask "What is CSF?"
  pakus ask "When did IMET cease operations?" --json
  pakus search "coalition support fund" -k 3
  pakus chat
  pakus ui --port 7860
  pakus index status
\b
Settings can also come from the environment: PAKUS_K, PAKUS_BACKEND, PAKUS_MODEL_PATH,
PAKUS_CACHE_DIR, PAKUS_INDEX_DIR, PAKUS_SEEDS_DIR, PAKUS_THREADS.
"""


def _settings(**overrides) -> Settings:
    return Settings.from_env().with_overrides(**overrides)


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _read_question(question: str) -> str:
    """The question argument, or standard input when it is '-'; must be valid UTF-8."""
    if question == "-":
        data = sys.stdin.buffer.read()
        try:
            question = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError("standard input is not valid UTF-8 text; convert it to UTF-8 and try again") from None
    return question


class _Group(click.Group):
    """Turns library errors and Ctrl-C into one line and an exit code, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
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
    """Build or inspect the index of the documents in seeds/."""


@index.command("build")
@click.option("--force", is_flag=True, help="Rebuild even if the index is up to date.")
def index_build(force: bool) -> None:
    """Build the index (only when missing or out of date, unless --force)."""
    from .index import build_index, index_status

    settings = _settings()
    if not force:
        status = index_status(settings)
        if status["up_to_date"]:
            click.echo(f"index is up to date ({status['chunks']} chunks from {status['documents']} documents); use --force to rebuild")
            return
    built = build_index(settings)
    manifest = built.manifest
    click.echo(f"built index at {built.directory}: {manifest['chunks']} chunks from {manifest['documents']} documents in {manifest['build_seconds']} s")


@index.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def index_status_command(as_json: bool) -> None:
    """Documents, chunks, model, build time, and whether the index is up to date."""
    from .index import index_status

    status = index_status(_settings())
    if as_json:
        _echo_json(status)
    else:
        click.echo(f"index:      {status['index_dir']}")
        click.echo(f"state:      {status['state']}" + ("" if status["up_to_date"] else "  (run: pakus index build)"))
        if status.get("problem"):
            click.echo(f"problem:    {status['problem']}")
        for reason in status.get("stale_reasons", []):
            click.echo(f"  - {reason}")
        if "chunks" in status:
            click.echo(f"documents:  {status['documents']}  ({', '.join(status['sources'])})")
            click.echo(f"chunks:     {status['chunks']}")
            click.echo(f"model:      {status['model']} ({status['dimension']} dimensions)")
            click.echo(f"built at:   {status['built_at']} in {status['build_seconds']} s")
    if not status["up_to_date"]:
        sys.exit(1)


# --- search ------------------------------------------------------------------------------------


@main.command()
@click.argument("query")
@click.option("-k", "k", type=int, default=5, show_default=True, help="Number of passages.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of hits.")
def search(query: str, k: int, as_json: bool) -> None:
    """Show the passages that best match QUERY (no language model involved)."""
    from .bot import Bot

    hits = Bot(_settings()).search(_read_question(query), k)
    if as_json:
        _echo_json([h.to_dict() for h in hits])
        return
    from .display import print_hits

    print_hits(hits)


# --- ask / chat --------------------------------------------------------------------------------

_generation_options = [
    click.option("-k", "k", type=int, default=None, help="Passages given to the model (default 2, or PAKUS_K)."),
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
def ask(question: str, k: int | None, backend: str | None, model_path: Path | None, as_json: bool, explain: bool) -> None:
    """Answer QUESTION from the documents, citing the passages used ('-' reads standard input)."""
    from .bot import Bot
    from .display import stream_answer

    bot = Bot(_settings(backend=backend, model_path=model_path, k=k))
    question = _read_question(question)
    if as_json:
        _echo_json(bot.ask(question).to_dict())
        return
    stream_answer(bot.ask_stream(question), explain=explain)


@main.command()
@generation_options
def chat(k: int | None, backend: str | None, model_path: Path | None) -> None:
    """Talk with the documents: follow-up questions understand the conversation so far."""
    from .bot import Bot, Chat
    from .display import run_chat

    run_chat(Chat(Bot(_settings(backend=backend, model_path=model_path, k=k))))


# --- ui / eval ---------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback: only this machine).")
@click.option("--port", default=7860, show_default=True, type=int)
@click.option("--share", is_flag=True, help="Also publish the page through a public Gradio tunnel (off unless asked).")
def ui(host: str, port: int, share: bool) -> None:
    """Open the chat page in your browser (Gradio, on this machine)."""
    from ui.app import launch

    launch(host=host, port=port, share=share, settings=_settings())


@main.command("eval")
@click.argument("questions", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
@generation_options
def eval_command(questions: Path | None, as_json: bool, k: int | None, backend: str | None, model_path: Path | None) -> None:
    """Measure retrieval, answers, citations and speed on a question set (JSONL)."""
    from .evaluation import run_eval

    sys.exit(run_eval(questions, _settings(backend=backend, model_path=model_path, k=k), as_json))


if __name__ == "__main__":
    main()
