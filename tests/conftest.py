"""Shared fixtures: a deterministic embedder, a scripted generator and a tiny document folder.

The fakes implement the same protocols as the real parts (`rag.embedding.Embedder`,
`rag.generators.Generator`), so every stage runs for real on them except the two models.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


# --- fakes ---------------------------------------------------------------------------------------


class FakeEmbedder:
    """Hashed bag of words: texts sharing words get a high cosine, unrelated texts about zero.

    Words are the BM25 tokens (lower case, stop words dropped, plurals folded), each hashed with
    sha256 (stable across processes, unlike `hash`) to one of 384 dimensions with a sign.
    """

    name = "fake/hashed-bag-of-words"
    dimension = 384

    def __init__(self) -> None:
        self.embed_calls = 0

    def _vector(self, text: str):
        import numpy as np

        from rag.lexical import tokenize

        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in tokenize(text):
            digest = hashlib.sha256(word.encode()).digest()
            bucket = int.from_bytes(digest[:4], "little") % (self.dimension - 1)
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # no content words: a unit vector in a dimension no word uses
            vector[self.dimension - 1] = 1.0
            return vector
        return vector / norm

    def embed(self, texts: list[str], *, progress: bool = False):
        import numpy as np

        self.embed_calls += 1
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2  # words plus [CLS] and [SEP]

    def fingerprint(self) -> dict:
        return {"name": self.name, "weights_sha256": hashlib.sha256(b"fake-weights").hexdigest(),
                "dimension": self.dimension, "max_tokens": 256}


Reply = str | Sequence[str] | Callable[[list[dict[str, str]]], str | Sequence[str]]


def pieces_of(text: str) -> list[str]:
    """Split a reply into token-like pieces: each word with the space before it."""
    return re.findall(r"\s*\S+", text) or [text]


class FakeGenerator:
    """Plays back scripted replies, one per `stream` call, and records every call.

    A reply is a string (streamed word by word), a list of pieces, or a function of the messages
    returning either. A call with no reply left fails the test.
    """

    backend = "fake"
    model_name = "fake-model"

    def __init__(self, replies: Sequence[Reply] = ()) -> None:
        self.replies = list(replies)
        self.calls: list[dict] = []

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, stop: Sequence[str] = ()) -> Iterator[str]:
        self.calls.append({"messages": messages, "max_tokens": max_tokens, "stop": list(stop)})
        if not self.replies:
            raise AssertionError(f"unexpected generator call #{len(self.calls)}: {messages[-1]['content'][:200]!r}")
        reply = self.replies.pop(0)
        if callable(reply):
            reply = reply(messages)
        pieces = pieces_of(reply) if isinstance(reply, str) else list(reply)
        for piece in pieces:
            # Like a real backend: stop strings end the reply and are not part of it.
            cut = min((piece.find(s) for s in stop if s and s in piece), default=-1)
            if cut >= 0:
                if piece[:cut]:
                    yield piece[:cut]
                return
            yield piece

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class MemoryStore:
    """The Store protocol in plain Python: brute-force cosine, and a lexical score that counts
    matching tokens. For unit tests of what sits above a store (fusion, weights, checks)."""

    name = "memory"

    def __init__(self, chunks: Sequence = (), vectors=None) -> None:
        self.records: dict[str, tuple[str, object, object]] = {}  # chunk_id -> (doc, chunk, vector)
        if chunks:
            self.upsert("doc", list(chunks), vectors if vectors is not None else [None] * len(chunks))

    def upsert(self, doc, chunks, vectors) -> None:
        self.delete(doc)
        for chunk, vector in zip(chunks, vectors):
            self.records[chunk.chunk_id] = (doc, chunk, vector)

    def delete(self, doc) -> None:
        self.records = {k: v for k, v in self.records.items() if v[0] != doc}

    def rename(self, doc, source) -> None:
        from dataclasses import replace

        self.records = {k: (d, replace(c, source=source) if d == doc else c, v) for k, (d, c, v) in self.records.items()}

    def dense_search(self, vector, k):
        import numpy as np

        scored = [(cid, float(np.dot(v, vector))) for cid, (_, _, v) in self.records.items() if v is not None]
        return sorted(scored, key=lambda item: -item[1])[:k]

    def lexical_search(self, tokens, k):
        from rag.lexical import tokenize

        scored = [(cid, float(sum(t in tokenize(c.text) for t in tokens))) for cid, (_, c, _) in self.records.items()]
        return sorted([s for s in scored if s[1] > 0], key=lambda item: -item[1])[:k]

    def chunks(self, chunk_ids):
        return {cid: self.records[cid][1] for cid in chunk_ids if cid in self.records}

    def documents(self):
        counts: dict[str, int] = {}
        for doc, _, _ in self.records.values():
            counts[doc] = counts.get(doc, 0) + 1
        return counts

    def knows_word(self, word) -> bool:
        from rag.lexical import fold, tokenize

        return any(fold(word) in tokenize(c.text) for _, c, _ in self.records.values())

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


def passage_number(messages: list[dict[str, str]], phrase: str) -> int:
    """The number [n] of the passage in the prompt that contains `phrase` (for scripted replies)."""
    # A passage runs from its "[n] " line start to the next one (it may span several lines).
    parts = re.split(r"(?m)^\[(\d+)\] ", messages[-1]["content"])
    for number, passage in zip(parts[1::2], parts[2::2]):
        if phrase.lower() in passage.split("\n\nQuestion:")[0].lower():
            return int(number)
    raise AssertionError(f"no passage in the prompt contains {phrase!r}")


# --- tiny documents --------------------------------------------------------------------------------

# A paper converted from PDF: front matter, <sup> affiliations, bold, escaped dollars, headings,
# a sentence cut by a page break ("possible communist" / "expansion."), a list, references.
PAPER = """ASIO Journal of Testing Studies (AJTS)

# **A REVIEW OF AID TO PAKISTAN**

Ayesha Khan <sup>1</sup>, Bilal Ahmed<sup>2</sup>

<sup>1,2</sup> Department of History, Lahore University, Pakistan

#### **ARTICLE INFO**

**Received:** 6<sup>th</sup> October, 2021 **Accepted:** 15<sup>th</sup> October, 2021

# **ABSTRACT**

This review studies **financial aid** from the United States to Pakistan after 2001. The aid became a point of conflict between the partners.

#### INTRODUCTION:

Pakistan is projected to have received \\$73 billion in foreign aid between 1947 and 2001. The aid helped the leadership support the US in the face of possible communist

expansion. Pakistan was seen as a solid ally in South Asia (Hilali, 2007, p. 45). In addition, the United States established the Coalition Support Fund (CSF) to reimburse Pakistan's army for operating costs. CSF accounted for over a third of the funds that Washington provided to Islamabad.

#### Military training

The International Military Education and Training programme (IMET) trained Pakistani officers in America. When relations became tense in 1990, IMET ceased operations. The programme resumed in 2002 with \\$1 billion a year (pp. 7-8).

The following measures were planned:

- 1. To train police officers in leadership.

- 2. To implement biometric technology to collect criminal records.

#### REFERENCES:

Chollet, C. C. (2007). When \\$10 Billion Is Not Enough. Washington Quarterly 30, 7-19.

Jones, S. G. (2006). Securing Tyrants or Fostering Reform? Rand Corporation.
"""

# A web page: the title twice, app advertisements and a category line around the article.
ARTICLE = """Gwadar port and regional trade

Published: 01:14 AM, 16 Sep, 2024
Stay tuned with 24 News HD Android App
Get it on Google Play



The Gwadar port opened in 2007 with Chinese funding. It handles cargo ships bound for Central Asia.


The Karachi port handled 40 million tonnes of cargo in 2019. Dredging work deepened the harbour channel in 2021.


Categories : Opinion
"""

# Plain notes with Windows line ends, to check that offsets count both characters of "\r\n".
NOTES = ("Cricket notes\r\n\r\nThe national cricket team won the championship trophy in Lahore.\r\n"
         "Fans celebrated the victory\r\nin the streets of the old city.\r\n")

PROVENANCE = {
    "_about": "tiny documents for the tests",
    "aid-review.md": {"title": "A Review of Aid to Pakistan", "kind": "review paper", "publisher": "ASIO Journal"},
    "gwadar-port.txt": {"title": "Gwadar port and regional trade", "kind": "opinion article (op-ed)", "publisher": "24 News HD"},
}


def write_tiny_documents(root: Path) -> Path:
    seeds = root / "seeds"
    seeds.mkdir(parents=True, exist_ok=True)
    (seeds / "aid-review.md").write_bytes(PAPER.encode("utf-8"))
    (seeds / "gwadar-port.txt").write_bytes(ARTICLE.encode("utf-8"))
    (seeds / "cricket-notes.txt").write_bytes(NOTES.encode("utf-8"))
    (seeds / "sources.json").write_text(json.dumps(PROVENANCE, indent=2), encoding="utf-8")
    return seeds


def tiny_settings_for(root: Path, **changes) -> Settings:
    return Settings(project_root=root, cache_dir=root / "cache", threads=1, **changes)


@pytest.fixture(scope="session")
def real_count_tokens():
    """The real embedder's token counter: loads only its tokenizer (no torch model), once."""
    from rag.embedding import MiniLMEmbedder

    return MiniLMEmbedder().count_tokens


@pytest.fixture
def tiny_docs(tmp_path) -> Settings:
    """Settings for a project in tmp_path whose seeds/ holds the three tiny documents (no index yet)."""
    write_tiny_documents(tmp_path)
    return tiny_settings_for(tmp_path)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


def load_folder(folder: Path, root: Path):
    """The Documents of a folder's files as pakus indexes them (sources relative to `root`, with
    the folder's sources.json applied), in name order: what the stages downstream of loading see."""
    from rag.ingest import SOURCES_FILE, read_document, read_overrides

    overrides = read_overrides(folder)
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.name != SOURCES_FILE and p.name.lower() != "readme.md")
    return [read_document(p, p.relative_to(root).as_posix(), overrides.get(p.name)) for p in paths]


def load_document(path: Path, root: Path, overrides: dict | None = None):
    from rag.ingest import read_document

    return read_document(path, path.relative_to(root).as_posix(), overrides)


@pytest.fixture
def tiny_index(tiny_docs, fake_embedder):
    """The tiny project with its seeds indexed by the fake embedder: (settings, open collection)."""
    from rag.collections import open_collection
    from rag.index import build_seeds

    build_seeds(tiny_docs, fake_embedder)
    opened = open_collection(tiny_docs)
    yield tiny_docs, opened
    opened.close()


def free_port() -> int:
    """A loopback port nobody listens on (for tests that start the UI server)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_runs_in_a_fresh_python(code: str, timeout: int = 60) -> None:
    """Run `code` in a new interpreter (nothing imported yet, unlike this test process) and fail
    with its stderr: how the tests prove which modules an import or a call pulls in."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
