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
from .stores.base import STORES

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


def _settings(**overrides) -> Settings:
    return Settings.from_env().with_overrides(**overrides)


collection_option = click.option(
    "-c", "--collection", default=None, metavar="NAME",
    help="Collection to use (default: seeds, or PAKUS_COLLECTION). See: pakus collections.")


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
    settings = _settings().with_overrides(collection="seeds")
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

    status = index_status(_settings(collection=collection))
    if as_json:
        _echo_json(status)
    else:
        from .display import print_status

        print_status(status)
    if not status["up_to_date"]:
        sys.exit(1)


# --- collections -------------------------------------------------------------------------------

_store_option = click.option("--store", type=click.Choice(STORES), default=None,
                             help="Where a NEW collection keeps its index (default embedded; see README).")


def _ingest_output(as_json: bool):
    """Per-file lines as they happen (text mode), or nothing until the JSON list at the end.

    Files that did not change get no line of their own (the summary counts them, --json lists
    them): a second `add` of 10,000 files would otherwise print 10,000 lines that say nothing.
    Each line is printed with the progress bars (on stderr) lifted and drawn again below it,
    instead of into the middle of a bar."""
    if as_json:
        return None
    from tqdm import tqdm

    from .display import report_line

    def echo(report) -> None:
        if report.status != "unchanged":
            with tqdm.external_write_mode(file=sys.stdout):
                click.echo(report_line(report))

    return echo


def _finish_ingest(reports, collection: str, seconds: float, as_json: bool) -> None:
    if as_json:
        _echo_json([r.to_dict() for r in reports])
    else:
        from .display import summary_line

        click.echo(summary_line(reports, collection, seconds))
    if any(r.failed for r in reports):
        sys.exit(1)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@collection_option
@click.option("--force", is_flag=True, help="Convert and embed again even files that did not change.")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Print the per-file results as a JSON list.")
def add(paths: tuple[Path, ...], collection: str | None, force: bool, store: str | None, as_json: bool) -> None:
    """Add files and folders (recursively) to a collection, creating it if needed.

    Reads .pdf .docx .html .htm .md .markdown .txt; unchanged files are skipped by their hash."""
    import time

    from .ingest import add as add_files

    started = time.perf_counter()
    settings = _settings(collection=collection)
    reports = add_files(paths, settings, force=force, progress=not as_json, on_report=_ingest_output(as_json),
                        store=store, store_options=_store_options(store))
    _finish_ingest(reports, settings.collection, time.perf_counter() - started, as_json)


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@collection_option
@click.option("--force", is_flag=True, help="Convert and embed again even files that did not change.")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Print the per-file results as a JSON list.")
def sync(folder: Path, collection: str | None, force: bool, store: str | None, as_json: bool) -> None:
    """Make a collection mirror FOLDER: new and changed files indexed, files gone removed."""
    import time

    from .ingest import sync as sync_folder

    started = time.perf_counter()
    settings = _settings(collection=collection)
    reports = sync_folder(folder, settings, force=force, progress=not as_json, on_report=_ingest_output(as_json),
                          store=store, store_options=_store_options(store))
    _finish_ingest(reports, settings.collection, time.perf_counter() - started, as_json)


def _store_options(store: str | None) -> dict | None:
    """A new Milvus collection remembers its URI (PAKUS_MILVUS_URI), so later commands find it."""
    if store != "milvus":
        return None
    from .stores.milvus import options_from_env

    return options_from_env()


@main.command()
@click.argument("targets", nargs=-1, required=True)
@collection_option
@click.option("--json", "as_json", is_flag=True, help="Print the per-file results as a JSON list.")
def remove(targets: tuple[str, ...], collection: str | None, as_json: bool) -> None:
    """Remove documents from a collection, by path (a folder: all under it) or by source name."""
    import time

    from .ingest import remove as remove_files

    started = time.perf_counter()
    settings = _settings(collection=collection)
    reports = remove_files(targets, settings, on_report=_ingest_output(as_json))
    _finish_ingest(reports, settings.collection, time.perf_counter() - started, as_json)


@main.command()
@collection_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per document.")
def sources(collection: str | None, as_json: bool) -> None:
    """List a collection's documents: source, title, format, pages, chunks, sha256, added at."""
    from .collections import list_sources

    settings = _settings(collection=collection)
    records = list_sources(settings)
    if as_json:
        _echo_json(records)
        return
    from .display import print_documents

    print_documents(records, settings.collection)


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def collections(ctx: click.Context, as_json: bool) -> None:
    """List the collections (pakus collections delete NAME deletes one; set NAME --k N sets its k)."""
    if ctx.invoked_subcommand is not None:
        return
    from .collections import list_collections

    records = list_collections(_settings())
    if as_json:
        _echo_json(records)
        return
    from .display import print_collections

    print_collections(records)


@collections.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def collections_delete(name: str, yes: bool) -> None:
    """Delete collection NAME and its index (your original files are not touched)."""
    from .collections import delete, require

    settings = _settings()
    require(settings, name)
    if not yes and not click.confirm(f"Delete collection {name!r} and its index? Your files are not touched.", err=True):
        click.echo("pakus: nothing deleted", err=True)
        sys.exit(1)
    delete(settings, name)
    click.echo(f"deleted collection {name!r}")


@collections.command("set")
@click.argument("name")
@click.option("-k", "--k", "k", required=True, metavar="N|default",
              help="Passages given to the model for this collection's questions; 'default' goes back to pakus's.")
def collections_set(name: str, k: str) -> None:
    """Change collection NAME's settings (measure first: pakus eval QUESTIONS -c NAME -k N)."""
    from .collections import set_k
    from .settings import DEFAULT_K

    if k.strip().lower() == "default":
        value = None
    elif k.strip().isdigit():
        value = int(k)
    else:
        raise InvalidInputError(f"--k must be a whole number or 'default', got {k!r}")
    set_k(_settings(), name, value)
    click.echo(f"collection {name!r}: k = {value or DEFAULT_K}" + (" (the default)" if value is None else ""))


# --- search ------------------------------------------------------------------------------------


@main.command()
@click.argument("query")
@collection_option
@click.option("-k", "k", type=int, default=5, show_default=True, help="Number of passages.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of hits.")
def search(query: str, collection: str | None, k: int, as_json: bool) -> None:
    """Show the passages that best match QUERY (no language model involved)."""
    from .bot import Bot

    hits = Bot(_settings(collection=collection)).search(_read_question(query), k)
    if as_json:
        _echo_json([h.to_dict() for h in hits])
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

    bot = Bot(_settings(collection=collection, backend=backend, model_path=model_path, k=k))
    question = _read_question(question)
    if as_json:
        _echo_json(bot.ask(question).to_dict())
        return
    stream_answer(bot.ask_stream(question), explain=explain)


@main.command()
@generation_options
def chat(collection: str | None, k: int | None, backend: str | None, model_path: Path | None) -> None:
    """Talk with the documents: follow-up questions understand the conversation so far."""
    from .bot import Bot, Chat
    from .display import run_chat

    run_chat(Chat(Bot(_settings(collection=collection, backend=backend, model_path=model_path, k=k))))


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

    click.echo(default_gguf_path(_settings()))  # progress, if it assembles, goes to stderr


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

    findings = run_checks(_settings(), full_model_hash=not quick, repair=repair)
    ok = all(f.ok for f in findings)
    if as_json:
        _echo_json({"ok": ok, "findings": [f.to_dict() for f in findings]})
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

    launch(host=host, port=port, share=share, settings=_settings(collection=collection))


@main.command("eval")
@click.argument("questions", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
@generation_options
def eval_command(questions: Path | None, as_json: bool, collection: str | None, k: int | None, backend: str | None,
                 model_path: Path | None) -> None:
    """Measure retrieval, answers, citations and speed on a question set (JSONL)."""
    from .evaluation import run_eval

    sys.exit(run_eval(questions, _settings(collection=collection, backend=backend, model_path=model_path, k=k), as_json))


if __name__ == "__main__":
    main()
