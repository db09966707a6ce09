"""Reaching Milvus for the milvus store, and the layout of a pakus collection there: which Milvus a
URI names, a connected `MilvusClient`, a new collection's name, and its fields and indexes.

The URI decides where Milvus runs:

- a file path ending in `.db` (default `milvus.db` in the collection's folder; a relative path is
  taken from that folder): Milvus Lite, the server's C++ engine started as a child process of this
  one, for development, tests and one machine. One process at a time can open a Lite file.
- `http://host:19530` (or https, tcp, grpc): a Milvus standalone server or cluster.

`PAKUS_MILVUS_URI` chooses it when a collection is created (`pakus add ... --store milvus`); the
collection remembers it in `collection.json` (`store_options`). `PAKUS_MILVUS_TOKEN` is a server's
credentials (never written down), `PAKUS_MILVUS_TIMEOUT` how long to wait for a server to answer
a connection (default 3 s): a server that is down is one line naming the URI, within that time.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import ConfigError, IndexCorruptError
from .milvus_lite import ENV_URI, MilvusError, lite_path, lite_start, lite_stop, quiet_logging

ENV_TOKEN = "PAKUS_MILVUS_TOKEN"
ENV_TIMEOUT = "PAKUS_MILVUS_TIMEOUT"
DEFAULT_FILE = "milvus.db"
SERVER_SCHEMES = ("http", "https", "tcp", "grpc", "unix")
CONNECT_TIMEOUT = 3  # seconds to wait for a server's answer: it answers in milliseconds when up
LITE_START_TIMEOUT = 60  # the Lite child process starting on a busy machine
BM25_K1, BM25_B = 1.5, 0.75  # bm25s's defaults, which the embedded store uses
MAX_TOKENS_BYTES = 65535  # Milvus's largest VARCHAR


def options_from_env() -> dict[str, Any]:
    """What a new Milvus collection records in `collection.json`: its URI (PAKUS_MILVUS_URI, or a
    Milvus Lite file in the collection's folder). The token stays in the environment."""
    return {"uri": os.environ.get(ENV_URI, "").strip() or DEFAULT_FILE}


def is_server(uri: str) -> bool:
    return urlparse(uri).scheme.lower() in SERVER_SCHEMES


def one_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(message).split())[:300]


def collection_name(name: str) -> str:
    """A new Milvus collection's name: letters, digits and '_' only, and unique."""
    return f"pakus_{re.sub(r'[^A-Za-z0-9_]', '_', name)}_{uuid.uuid4().hex[:8]}"


def collection_schema(client, dimension: int):
    """The fields and indexes of a new pakus collection (see milvus.py for what each row holds)."""
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=128)
    schema.add_field("chunk_id", DataType.VARCHAR, max_length=64)
    schema.add_field("doc", DataType.VARCHAR, max_length=128)
    schema.add_field("version", DataType.INT64)
    schema.add_field("record", DataType.JSON)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field("tokens", DataType.VARCHAR, max_length=MAX_TOKENS_BYTES, enable_analyzer=True,
                     analyzer_params={"tokenizer": "whitespace"})
    schema.add_field("lexical", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["tokens"],
                                 output_field_names=["lexical"]))
    index = client.prepare_index_params()
    index.add_index("dense", index_type="FLAT", metric_type="IP")
    index.add_index("lexical", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
    index.add_index("chunk_id", index_type="INVERTED")
    index.add_index("doc", index_type="INVERTED")
    return schema, index


def connect(folder: Path, uri: str, *, writable: bool):
    """A MilvusClient for `uri`, and what to call when done with it."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise ConfigError("the milvus store needs pymilvus and milvus-lite: pip install 'pakus[milvus]'") from None
    quiet_logging()
    if is_server(uri):
        raw = os.environ.get(ENV_TIMEOUT, "").strip()
        try:
            timeout = float(raw) if raw else CONNECT_TIMEOUT
        except ValueError:
            raise ConfigError(f"{ENV_TIMEOUT}={raw!r} is not a number of seconds") from None
        try:
            client = MilvusClient(uri=uri, token=os.environ.get(ENV_TOKEN, ""), timeout=timeout)
        except Exception as exc:  # refused, timed out, refused credentials
            raise MilvusError(f"cannot reach the Milvus server at {uri} within {timeout:g} s ({one_line(exc)}); "
                              f"start it, or point {ENV_URI} at a running one") from None
        return client, None
    path = lite_path(folder, uri)
    if not path.parent.is_dir():
        if not writable:
            raise IndexCorruptError(f"{path.parent} (the folder of the collection's Milvus Lite file) is missing")
        path.parent.mkdir(parents=True, exist_ok=True)
    if not writable and not path.exists():
        raise IndexCorruptError(f"the collection's Milvus Lite file {path} is missing; rebuild it: pakus add PATH --force")
    address = lite_start(path)
    try:
        client = MilvusClient(uri=address, timeout=LITE_START_TIMEOUT)
    except Exception as exc:
        lite_stop(path)
        raise MilvusError(f"cannot connect to Milvus Lite on {path} ({one_line(exc)})") from None
    return client, lambda: lite_stop(path)
