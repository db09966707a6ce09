"""The packaged model as the transformers backend loads it: a bf16 safetensors folder, converted once
from the GGUF that model_files.py assembles, and again only when that GGUF changes. torch and
transformers are imported inside the conversion.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..errors import ModelCorruptError, ModelError
from ..settings import Settings, set_offline
from .model_files import _file_lock, _say

_CONVERSION_MANIFEST = "pakus-conversion.json"


def _stat_key(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _conversion_key(gguf_path: Path) -> dict[str, object]:
    return {"source": str(gguf_path.resolve()), **_stat_key(gguf_path), "dtype": "bfloat16"}


def hf_folder_for(gguf_path: Path, settings: Settings) -> Path:
    """A bf16 safetensors folder converted once from `gguf_path`, for the transformers backend.

    Loading a GGUF through transformers dequantizes it on every start (22-68 s, 8.6 GiB, see
    MODELS.md); a bf16 folder loads in a few seconds. The folder records which GGUF it came from
    and is rebuilt if that file changes.
    """
    folder = settings.cache_dir / "models" / f"{gguf_path.stem}-bf16"
    manifest = folder / _CONVERSION_MANIFEST
    key = _conversion_key(gguf_path)

    def is_current() -> bool:
        try:
            return json.loads(manifest.read_text()) == key
        except (OSError, ValueError):
            return False

    if is_current():
        return folder
    with _file_lock(folder.with_name(folder.name + ".lock")):
        if is_current():
            return folder
        started = time.monotonic()
        _say(f"pakus: converting {gguf_path.name} for transformers into {folder} (one time, 1-2 minutes, up to 7 GB of memory)...")
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", suffix=".partial", dir=folder.parent))
        try:
            _convert_gguf_to_bf16(gguf_path, tmp)
            (tmp / _CONVERSION_MANIFEST).write_text(json.dumps(key))
            os.chmod(tmp, 0o755)
            if folder.exists():  # an outdated conversion: replace it
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _say(f"pakus: conversion done in {time.monotonic() - started:.1f} s")
    return folder


def _convert_gguf_to_bf16(gguf_path: Path, out_dir: Path) -> None:
    """Dequantize through transformers' GGUF loader and save a plain bf16 model with its tokenizer.

    transformers refuses to `save_pretrained` a model that was loaded from GGUF, so the weights
    are moved into a model built from the same config without the quantization config. That model
    is built on the meta device: random initialisation of 1.5B weights would take ~25 s here, only
    to be overwritten. (Its non-persistent rotary buffers stay on meta, which does not matter: they
    are not saved, and the saved folder is loaded afresh.)
    """
    set_offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.bfloat16)
    except MemoryError:
        raise ModelError("not enough memory to convert the model for transformers (it needs about 7 GB); use --backend llama-cpp") from None
    except Exception as exc:  # transformers raises many types for files it cannot read
        raise ModelCorruptError(
            f"transformers cannot read {gguf_path} ({type(exc).__name__}: {exc}); if it is the packaged model, delete it "
            "and run again, otherwise use --backend llama-cpp"
        ) from exc

    config = copy.deepcopy(loaded.config)
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attribute):
            delattr(config, attribute)
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    state = {key: value.to(torch.bfloat16) for key, value in loaded.state_dict().items()}
    # assign=True takes the loaded tensors as they are: no copy, no second 3 GB allocation.
    missing, unexpected = plain.load_state_dict(state, strict=False, assign=True)
    if config.tie_word_embeddings:  # the GGUF then has no separate output matrix
        plain.tie_weights()
        missing = [key for key in missing if key != "lm_head.weight"]
    if missing or unexpected:
        raise ModelError(f"converting {gguf_path.name} failed: missing {missing[:3]}, unexpected {unexpected[:3]}")
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
