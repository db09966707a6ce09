"""The public Python API: exactly these names, each resolvable, and a light `import rag`."""

from __future__ import annotations

import pytest

import rag
from conftest import assert_runs_in_a_fresh_python

PUBLIC = {
    "__version__",
    "Answer", "Citation", "Hit", "Chunk", "Document",
    "Settings",
    "PakusError", "InvalidInputError", "ConfigError", "IndexMissingError", "IndexCorruptError", "IndexStaleError",
    "ModelError", "ModelMissingError", "ModelCorruptError", "GenerationError", "DocumentError",
    "Bot", "Chat",
    "Generator",
    "search", "ask", "ask_stream", "default_bot",
    "add", "sync", "remove", "sources", "collections", "FileReport", "CollectionMissingError", "CollectionBusyError",
}


def test_all_is_exactly_the_public_api():
    assert len(rag.__all__) == len(set(rag.__all__))
    assert set(rag.__all__) == PUBLIC


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_each_public_name_resolves(name):
    assert getattr(rag, name) is not None


def test_names_resolve_to_their_defining_modules():
    from rag.bot import Bot
    from rag.errors import PakusError
    from rag.schema import Answer

    assert rag.Bot is Bot and rag.Answer is Answer and rag.PakusError is PakusError
    assert issubclass(rag.ConfigError, rag.InvalidInputError) and issubclass(rag.IndexStaleError, rag.PakusError)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        rag.Nope  # noqa: B018


def test_import_rag_is_light():
    check = ("import rag, sys; heavy = [m for m in ('numpy', 'torch', 'faiss', 'transformers', 'bm25s', 'llama_cpp', 'gradio') "
             "if m in sys.modules]; assert not heavy, heavy; rag.Settings; rag.Answer; rag.PakusError; "
             "heavy = [m for m in ('numpy', 'torch', 'faiss') if m in sys.modules]; assert not heavy, heavy")
    assert_runs_in_a_fresh_python(check)


def test_module_functions_use_one_default_bot(monkeypatch):
    class RecordingBot:
        def __init__(self):
            self.calls = []

        def close(self):
            pass

        def search(self, query, k):
            self.calls.append(("search", query, k))
            return ["hit"]

        def ask(self, question, *, k=None, history=None):
            self.calls.append(("ask", question, k))
            return "answer"

    bot = RecordingBot()
    monkeypatch.setattr(rag, "_bots", {"seeds": bot})
    monkeypatch.delenv("PAKUS_COLLECTION", raising=False)
    assert rag.default_bot() is bot
    assert rag.search("What is CSF?", k=2) == ["hit"]
    assert rag.ask("What is CSF?", k=1) == "answer"
    assert bot.calls == [("search", "What is CSF?", 2), ("ask", "What is CSF?", 1)]
