"""The embedded store's lexical index: Lucene BM25 over pakus's tokens, in NumPy (not a store).

bm25s computed the same scores, but could only be built from the whole collection: on the 27,000
chunks of the 10,033 wiki articles that took 1.8 s of every `pakus add` of a single file. Here the
index keeps what BM25 needs and nothing derived from the whole collection (per word, the chunks
that hold it and how often; per chunk, its length), and the scores are computed at query time for
the query's words only. So dropping chunks and appending chunks are array operations (`without`,
`plus`), and the collection-wide parts (document frequencies, average length) are always current.

Scores are bm25s's defaults, which the milvus store matches too: Lucene's idf
log(1 + (N - df + 0.5) / (df + 0.5)) and term part tf / (tf + k1·(1 - b + b·len/avglen)), k1 1.5,
b 0.75, float32, a repeated query word counting each time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

K1, B = 1.5, 0.75
_FILES = ("vocabulary.json", "postings.npz")


class BM25:
    """Word -> postings (chunk position, term frequency), words in code point order."""

    def __init__(self, words: list[str], starts: np.ndarray, chunks: np.ndarray, counts: np.ndarray, lengths: np.ndarray):
        self.words = words  # sorted, each in at least one chunk; a word's id is its position
        self.starts = starts  # postings of word i: [starts[i], starts[i + 1])
        self.chunks = chunks  # chunk positions, ascending within a word
        self.counts = counts  # term frequencies
        self.lengths = lengths  # tokens per chunk
        self._ids: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    # --- making and changing ---------------------------------------------------------------------

    @classmethod
    def build(cls, token_lists: list[list[str]]) -> BM25:
        empty = cls([], np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32),
                    np.zeros(0, dtype=np.int32))
        return empty.plus(token_lists)

    def without(self, positions) -> BM25:
        """The index with the chunks at `positions` left out; later chunks move up."""
        keep = np.ones(len(self), dtype=bool)
        keep[np.asarray(positions, dtype=np.int64)] = False
        moved = np.cumsum(keep) - 1  # new position of each kept chunk
        word_ids = np.repeat(np.arange(len(self.words)), np.diff(self.starts))
        kept = keep[self.chunks]
        return _made(self.words, word_ids[kept], moved[self.chunks[kept]], self.counts[kept], self.lengths[keep])

    def plus(self, token_lists: list[list[str]]) -> BM25:
        """The index with chunks appended, at positions len(self), len(self) + 1, ..."""
        if not token_lists:
            return self
        ids = dict(self._word_ids())
        words = list(self.words)
        flat = [ids.setdefault(word, len(ids)) for tokens in token_lists for word in tokens]
        words += list(ids)[len(words):]
        lengths = np.array([len(tokens) for tokens in token_lists], dtype=np.int32)
        # (word, chunk) pairs of the new chunks with their counts, as one sorted key each
        chunk = np.repeat(np.arange(len(self), len(self) + len(token_lists)), lengths)
        keys, counts = np.unique(np.asarray(flat, dtype=np.int64) * (len(self) + len(token_lists)) + chunk, return_counts=True)
        new_words, new_chunks = np.divmod(keys, len(self) + len(token_lists))
        old_words = np.repeat(np.arange(len(self.words)), np.diff(self.starts))
        return _made(words, np.concatenate([old_words, new_words]), np.concatenate([self.chunks, new_chunks]),
                     np.concatenate([self.counts, counts]), np.concatenate([self.lengths, lengths]))

    # --- searching -------------------------------------------------------------------------------

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every chunk for the query `tokens` (float32, 0 where no word matches)."""
        scores = np.zeros(len(self), dtype=np.float32)
        if not len(self):
            return scores
        ids = self._word_ids()
        average = self.lengths.mean()
        for token in tokens:
            word = ids.get(token)
            if word is None:
                continue
            start, end = self.starts[word], self.starts[word + 1]
            chunks, counts = self.chunks[start:end], self.counts[start:end].astype(np.float32)
            frequency = end - start
            idf = np.float32(math.log(1 + (len(self) - frequency + 0.5) / (frequency + 0.5)))
            # float32 per posting, summed in float32: bm25s's arithmetic, to the last bit
            scores[chunks] += (idf * (counts / (K1 * ((1 - B) + B * self.lengths[chunks] / average) + counts))).astype(np.float32)
        return scores

    def _word_ids(self) -> dict[str, int]:
        if self._ids is None:
            self._ids = {word: i for i, word in enumerate(self.words)}
        return self._ids

    # --- files -----------------------------------------------------------------------------------

    def save(self, folder: Path) -> list[Path]:
        folder.mkdir()
        (folder / "vocabulary.json").write_text(json.dumps(self.words, ensure_ascii=False), encoding="utf-8")
        with open(folder / "postings.npz", "wb") as handle:
            np.savez(handle, starts=self.starts, chunks=self.chunks, counts=self.counts, lengths=self.lengths)
        return [folder / name for name in _FILES]

    @classmethod
    def load(cls, folder: Path) -> BM25:
        words = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
        with np.load(folder / "postings.npz") as arrays:
            index = cls(words, arrays["starts"], arrays["chunks"], arrays["counts"], arrays["lengths"])
        postings = len(index.chunks)
        if (len(index.starts) != len(words) + 1 or index.starts[-1] != postings or len(index.counts) != postings
                or (postings and index.chunks.max() >= len(index))):
            raise ValueError(f"{folder} is inconsistent")
        return index


def _made(words: list[str], word_ids: np.ndarray, chunks: np.ndarray, counts: np.ndarray, lengths: np.ndarray) -> BM25:
    """The index of these postings (each word's in ascending chunk order), its vocabulary reduced
    to the words still used and put in code point order (the order `knows_word` searches).

    The sorts are stable and mostly see sorted runs (the postings of a removal are already in
    order; an append adds one run), so a change costs a pass over the arrays, not a full sort."""
    used = np.flatnonzero(np.bincount(word_ids, minlength=len(words)))
    used_words = [words[i] for i in used.tolist()]
    order = sorted(range(len(used)), key=used_words.__getitem__)
    new_id = np.zeros(len(words), dtype=np.int64)
    new_id[used[order]] = np.arange(len(used))
    word_ids = new_id[word_ids]
    by_word = np.argsort(word_ids, kind="stable")
    starts = np.zeros(len(used) + 1, dtype=np.int64)
    np.cumsum(np.bincount(word_ids, minlength=len(used)), out=starts[1:])
    return BM25([used_words[i] for i in order], starts, chunks[by_word].astype(np.int32),
                counts[by_word].astype(np.int32), lengths.astype(np.int32))
