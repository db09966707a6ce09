"""A collection opened for answering: read-only, warned about when stale, and its clean documents
by source, read once, so that a passage or a citation maps back to its file."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from .embedding import Embedder
from .schema import Document
from .settings import Settings


class Documents(Mapping):
    """The collection's clean documents by source, read from its catalog when first needed (a
    passage or citation maps back to its file through them) and kept for the next question."""

    def __init__(self, catalog):
        self._catalog = catalog
        self._cache: dict[str, Document | None] = {}
        self._lock = threading.Lock()

    def __getitem__(self, source: str) -> Document:
        with self._lock:
            if source not in self._cache:
                self._cache[source] = self._catalog.document(source)
        document = self._cache[source]
        if document is None:
            raise KeyError(source)
        return document

    def __iter__(self):
        return iter([d["source"] for d in self._catalog.documents()])

    def __len__(self) -> int:
        return len(self._catalog.documents())


def open_for_queries(settings: Settings, embedder: Embedder):
    """Open the settings' collection read-only. A stale one is used as it is, with a warning naming
    the command that refreshes it (queries never rebuild); the seeds' index, small and shipped, is
    built when it is missing altogether."""
    import sys

    from .collections import DEFAULT, MANIFEST, directory, open_collection
    from .index import build_seeds, refresh_command, stale_reasons

    # Only a missing manifest means "never built": a damaged one is open_collection's to report (or
    # to replace by the copy its catalog keeps).
    if settings.collection == DEFAULT and not (directory(settings) / MANIFEST).exists() and settings.seeds.is_dir():
        print(f"pakus: no index of the seeds at {settings.index}; building it now", file=sys.stderr)
        build_seeds(settings, embedder)
    opened = open_collection(settings)
    reasons = stale_reasons(opened, settings, embedder)
    if reasons:
        shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
        print(f"pakus: warning: collection {opened.name!r} is out of date ({shown}); answering from the last index. "
              f"Refresh it with: {refresh_command(opened, settings)}", file=sys.stderr)
    return opened
