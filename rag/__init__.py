"""pakus: grounded question answering over local documents, on your own machine.

    >>> import rag
    >>> hits = rag.search("What is CSF?", k=5)           # ranked passages
    >>> answer = rag.ask("What is CSF?")                  # Answer with checked citations
    >>> for item in rag.ask_stream("What is CSF?"):      # text pieces, then the final Answer
    ...     print(item if isinstance(item, str) else "", end="")
    >>> chat = rag.Chat(); chat.ask("What is CSF?"); chat.ask("How much of the funds did it account for?")

The index and the models load on first use and are reused for the whole process. Names are
resolved lazily so that `import rag` (and `pakus --help`) does not import numpy, torch or faiss.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Answer": "schema", "Citation": "schema", "Hit": "schema", "Chunk": "schema", "Document": "schema",
    "Settings": "settings",
    "PakusError": "errors", "InvalidInputError": "errors", "ConfigError": "errors", "IndexMissingError": "errors",
    "IndexCorruptError": "errors", "IndexStaleError": "errors", "ModelError": "errors",
    "ModelMissingError": "errors", "ModelCorruptError": "errors", "GenerationError": "errors", "DocumentError": "errors",
    "Bot": "bot", "Chat": "bot",
    "FileReport": "ingest", "CollectionBusyError": "write_access", "CollectionMissingError": "collections",
    "Generator": "generators",
}
_API_FUNCTIONS = ("search", "ask", "ask_stream", "default_bot", "add", "sync", "remove", "sources", "collections")
__all__ = ["__version__", *_EXPORTS, *_API_FUNCTIONS]

if TYPE_CHECKING:
    from .bot import Bot, Chat  # noqa: F401
    from .schema import Answer, Hit  # noqa: F401

_bots: dict = {}  # one Bot per collection; they share the loaded models


def _settings(collection: str | None):
    from .settings import Settings

    settings = Settings.from_env()
    return settings.with_overrides(collection=collection)


def default_bot(collection: str | None = None):
    """The process-wide `Bot` of a collection (default: PAKUS_COLLECTION, else the seeds), with
    settings from PAKUS_* variables. Bots of different collections share the loaded models."""
    from .bot import Bot

    settings = _settings(collection)
    if settings.collection not in _bots:
        donor = next(iter(_bots.values()), None)
        bot = Bot(settings)
        if donor is not None:
            bot.share_models_with(donor)
        _bots[settings.collection] = bot
    return _bots[settings.collection]


def search(query: str, k: int = 5, *, collection: str | None = None):
    """The `k` passages that best match `query`, as a list of `Hit`."""
    return default_bot(collection).search(query, k)


def ask(question: str, *, k: int | None = None, history=None, collection: str | None = None):
    """Answer `question` from the documents; returns an `Answer`."""
    return default_bot(collection).ask(question, k=k, history=history)


def ask_stream(question: str, *, k: int | None = None, history=None, collection: str | None = None):
    """Yield the answer text as it is generated, then the final `Answer`."""
    return default_bot(collection).ask_stream(question, k=k, history=history)


def _changed(collection: str | None) -> None:
    """A collection changed: its bot reopens it on the next question."""
    bot = _bots.get(_settings(collection).collection)
    if bot is not None:
        bot.close()


def add(paths, *, collection: str | None = None, force: bool = False):
    """Index files and folders into a collection (created if needed); returns one `FileReport` per file."""
    from .ingest import add as add_files

    try:
        return add_files([paths] if isinstance(paths, str) or not hasattr(paths, "__iter__") else paths, _settings(collection), force=force)
    finally:
        _changed(collection)


def sync(folder, *, collection: str | None = None, force: bool = False):
    """Make a collection mirror `folder`; returns one `FileReport` per file."""
    from .ingest import sync as sync_folder

    try:
        return sync_folder(folder, _settings(collection), force=force)
    finally:
        _changed(collection)


def remove(paths_or_sources, *, collection: str | None = None):
    """Remove documents by path or source name; returns one `FileReport` per file."""
    from .ingest import remove as remove_files

    targets = [paths_or_sources] if isinstance(paths_or_sources, str) else [str(p) for p in paths_or_sources]
    try:
        return remove_files(targets, _settings(collection))
    finally:
        _changed(collection)


def sources(*, collection: str | None = None):
    """The documents of a collection: the records `pakus sources --json` prints."""
    from .collections import list_sources

    return list_sources(_settings(collection))


def collections():
    """Every collection: the records `pakus collections --json` prints."""
    from .collections import list_collections

    return list_collections(_settings(None))


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
