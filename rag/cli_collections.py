"""The `pakus` commands that change or list what a collection holds: add, sync, remove, sources,
and collections (list, delete, set). cli.py registers them on the `pakus` group; like every
command, each imports what is heavy inside itself, so `pakus --help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli_options import collection_option, command_settings, echo_json
from .errors import InvalidInputError
from .stores.base import STORES

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
        echo_json([r.to_dict() for r in reports])
    else:
        from .display import summary_line

        click.echo(summary_line(reports, collection, seconds))
    if any(r.failed for r in reports):
        sys.exit(1)


@click.command()
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
    settings = command_settings(collection=collection)
    reports = add_files(paths, settings, force=force, progress=not as_json, on_report=_ingest_output(as_json),
                        store=store, store_options=_store_options(store))
    _finish_ingest(reports, settings.collection, time.perf_counter() - started, as_json)


@click.command()
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
    settings = command_settings(collection=collection)
    reports = sync_folder(folder, settings, force=force, progress=not as_json, on_report=_ingest_output(as_json),
                          store=store, store_options=_store_options(store))
    _finish_ingest(reports, settings.collection, time.perf_counter() - started, as_json)


def _store_options(store: str | None) -> dict | None:
    """A new Milvus collection remembers its URI (PAKUS_MILVUS_URI), so later commands find it."""
    if store != "milvus":
        return None
    from .stores.milvus_client import options_from_env

    return options_from_env()


@click.command()
@click.argument("targets", nargs=-1, required=True)
@collection_option
@click.option("--json", "as_json", is_flag=True, help="Print the per-file results as a JSON list.")
def remove(targets: tuple[str, ...], collection: str | None, as_json: bool) -> None:
    """Remove documents from a collection, by path (a folder: all under it) or by source name."""
    import time

    from .ingest import remove as remove_files

    started = time.perf_counter()
    settings = command_settings(collection=collection)
    reports = remove_files(targets, settings, on_report=_ingest_output(as_json))
    _finish_ingest(reports, settings.collection, time.perf_counter() - started, as_json)


@click.command()
@collection_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per document.")
def sources(collection: str | None, as_json: bool) -> None:
    """List a collection's documents: source, title, format, pages, chunks, sha256, added at."""
    from .collections import list_sources

    settings = command_settings(collection=collection)
    records = list_sources(settings)
    if as_json:
        echo_json(records)
        return
    from .display import print_documents

    print_documents(records, settings.collection)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def collections(ctx: click.Context, as_json: bool) -> None:
    """List the collections (pakus collections delete NAME deletes one; set NAME --k N sets its k)."""
    if ctx.invoked_subcommand is not None:
        return
    from .collections import list_collections

    records = list_collections(command_settings())
    if as_json:
        echo_json(records)
        return
    from .display import print_collections

    print_collections(records)


@collections.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def collections_delete(name: str, yes: bool) -> None:
    """Delete collection NAME and its index (your original files are not touched)."""
    from .collections import delete, require

    settings = command_settings()
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
    set_k(command_settings(), name, value)
    click.echo(f"collection {name!r}: k = {value or DEFAULT_K}" + (" (the default)" if value is None else ""))
