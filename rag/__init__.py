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
    "Generator": "generators",
}
_API_FUNCTIONS = ("search", "ask", "ask_stream", "default_bot")
__all__ = ["__version__", *_EXPORTS, *_API_FUNCTIONS]

if TYPE_CHECKING:
    from .bot import Bot, Chat  # noqa: F401
    from .schema import Answer, Hit  # noqa: F401

_default_bot = None


def default_bot():
    """The process-wide `Bot` used by the functions below (settings from PAKUS_* variables)."""
    global _default_bot
    if _default_bot is None:
        from .bot import Bot

        _default_bot = Bot()
    return _default_bot


def search(query: str, k: int = 5):
    """The `k` passages that best match `query`, as a list of `Hit`."""
    return default_bot().search(query, k)


def ask(question: str, *, k: int | None = None, history=None):
    """Answer `question` from the documents; returns an `Answer`."""
    return default_bot().ask(question, k=k, history=history)


def ask_stream(question: str, *, k: int | None = None, history=None):
    """Yield the answer text as it is generated, then the final `Answer`."""
    return default_bot().ask_stream(question, k=k, history=history)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
