"""`pakus` in a fresh process with the test fakes, and a place to stop it: for faults that need a
real process (SIGKILL, a file-size limit, a read-only mount, a broken pipe, a second writer).

    python tests/faults/fake_pakus.py add DOCS -c notes

The embedder is the hashed bag of words of tests/conftest.py and the generator replies with
PAKUS_FAKE_REPLY (one reply per call; "{csf}" becomes the number of the passage about the
Coalition Support Fund), or PAKUS_FAKE_REWRITE when asked to rewrite a chat's follow-up question.
Environment variables place the fault:

- PAKUS_FAKE_BATCH_CHUNKS=N  commit after every N chunks (ingest._BATCH_CHUNKS), so an add has
  several batches and a kill can fall between them.
- PAKUS_FAKE_PAUSE=POINT[:N]  at the N-th time (default 1) the process reaches POINT, create the
  file PAKUS_FAKE_READY and wait there to be killed, or, with PAKUS_FAKE_GO=FILE, until FILE
  exists (another process acts in the meantime). POINTs:
    embed          inside the embedder, before it returns (no transaction open)
    transaction    inside a batch's transaction, after the first document was written to it
    search-write   in the middle of writing the search files (dense written, bm25 not yet)
    search-rename  the search files complete in their temporary folder, before the rename
    search-renamed just after the rename, before the older generation is removed
    query          after retrieval, before the passages are read (a query in the middle)
- PAKUS_FAKE_EMBEDDED=FILE  append the number of texts of each embed call to FILE, to count work.
- PAKUS_FAKE_CACHE_PAGES=N  a writer's SQLite page cache holds N pages: a batch larger than that
  spills into the database file before its commit, as a large batch does, so a kill leaves a
  hot journal that the next reader must roll back.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent))

_counts: dict[str, int] = {}


def pause(point: str) -> None:
    wanted = os.environ.get("PAKUS_FAKE_PAUSE", "")
    name, _, nth = wanted.partition(":")
    if name != point:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] != int(nth or 1):
        return
    Path(os.environ["PAKUS_FAKE_READY"]).write_text(str(os.getpid()))
    go = os.environ.get("PAKUS_FAKE_GO")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the test kills us, or tells us to go on
        if go and os.path.exists(go):
            return
        time.sleep(0.02)
    raise SystemExit("fake_pakus: nobody killed me")


def _without_pytest() -> None:
    """conftest.py decorates its fixtures with pytest, whose import costs this process a third of
    a second, many times over in the fault suite: a stand-in decorator is all it needs here."""
    import types

    def fixture(*args, **kwargs):
        return args[0] if args and callable(args[0]) else (lambda function: function)

    sys.modules.setdefault("pytest", types.SimpleNamespace(fixture=fixture))


def install() -> None:
    _without_pytest()
    import rag.bot
    import rag.embedding
    import rag.ingest
    from conftest import FakeEmbedder, FakeGenerator, passage_number

    class Embedder(FakeEmbedder):
        def embed(self, texts, *, progress=False):
            vectors = super().embed(texts, progress=progress)
            if os.environ.get("PAKUS_FAKE_EMBEDDED") and texts:
                with open(os.environ["PAKUS_FAKE_EMBEDDED"], "a") as handle:
                    handle.write(f"{len(texts)}\n")
            pause("embed")
            return vectors

    rag.bot.MiniLMEmbedder = Embedder
    rag.embedding.MiniLMEmbedder = Embedder
    if os.environ.get("PAKUS_FAKE_BATCH_CHUNKS"):
        rag.ingest._BATCH_CHUNKS = int(os.environ["PAKUS_FAKE_BATCH_CHUNKS"])

    def reply(messages):
        text = os.environ.get("PAKUS_FAKE_REPLY", "NOT_IN_PASSAGES")
        if "{csf}" in text:
            try:
                text = text.replace("{csf}", str(passage_number(messages, "Coalition Support Fund (CSF)")))
            except AssertionError:  # no passages: the chat asks to rewrite a follow-up question
                text = os.environ.get("PAKUS_FAKE_REWRITE", text)
        return text

    rag.bot.load_generator = lambda settings: FakeGenerator([reply] * 10)

    from rag.catalog import Catalog

    real_put_document = Catalog.put_document

    def put_document(self, *args, **kwargs):
        real_put_document(self, *args, **kwargs)
        pause("transaction")

    Catalog.put_document = put_document

    real_init = Catalog.__init__

    def init(self, folder, *, writable):
        real_init(self, folder, writable=writable)
        if writable and os.environ.get("PAKUS_FAKE_CACHE_PAGES"):
            self.db.execute(f"PRAGMA cache_size={int(os.environ['PAKUS_FAKE_CACHE_PAGES'])}")

    Catalog.__init__ = init

    if os.environ.get("PAKUS_FAKE_PAUSE", "").startswith("search-write"):  # faiss takes a while to import
        import faiss

        real_write_index = faiss.write_index

        def write_index(*args, **kwargs):
            real_write_index(*args, **kwargs)
            pause("search-write")

        faiss.write_index = write_index

    import rag.stores.embedded as embedded

    real_rename = os.rename

    class _Os:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def rename(src, dst, *args, **kwargs):
            if Path(src).name.startswith(".tmp-search-"):
                pause("search-rename")
            real_rename(src, dst, *args, **kwargs)
            if Path(src).name.startswith(".tmp-search-"):
                pause("search-renamed")

    embedded.os = _Os()

    real_select = rag.bot.select_passages

    def select_passages(*args, **kwargs):
        pause("query")
        return real_select(*args, **kwargs)

    rag.bot.select_passages = select_passages


if __name__ == "__main__":
    install()
    from rag.cli import main

    main(prog_name="pakus")
