"""A damaged model file must not pass as verified: bytes changed in the middle of the GGUF with
its mtime put back (os.utime), a block changed behind the file system's back, a truncated file,
a corrupt prompt-state file. Done for real on a small GGUF-like file assembled in a temp folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from rag.errors import ModelCorruptError
from rag.generators import model_files
from rag.generators.model_files import default_gguf_path, verify_model_file
from rag.settings import Settings

# Large enough that the 64 sampled blocks (64 KiB each) cover only part of it, as on the real model.
SIZE = 64 * 64 * 1024 * 3 + 12345
CONTENT = b"GGUF" + bytes(hashlib.shake_256(b"weights").digest(SIZE - 4))
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(project_root=tmp_path, cache_dir=tmp_path / "cache")


@pytest.fixture
def model(settings, tmp_path) -> Path:
    parts = []
    for n, start in enumerate(range(0, SIZE, SIZE // 3 + 1), start=1):
        part = tmp_path / "parts" / f"part{n:02d}.bin"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(CONTENT[start:start + SIZE // 3 + 1])
        parts.append(part)
    return load(settings, find_parts=lambda: parts)


def load(settings, **options) -> Path:
    """What every start does before llama.cpp opens the file."""
    return default_gguf_path(settings, **({"find_parts": lambda: [], "sha256": SHA, "size": SIZE} | options))


def overwrite_keeping_mtime(path: Path, offset: int, data: bytes) -> None:
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)


def assert_one_line_naming_the_fix(error: ModelCorruptError, path: Path) -> None:
    message = str(error)
    assert "\n" not in message and "damaged" in message
    assert f"rm {path}" in message and "run again" in message


def test_bytes_changed_in_the_middle_with_the_mtime_put_back_are_caught(settings, model):
    assert load(settings) == model  # verified, marker written
    # Between two sampled blocks (they are ~3 MiB apart here): only the marker's ctime and inode,
    # which no utime can put back, tell that the file was written.
    overwrite_keeping_mtime(model, SIZE // 2 + 100_000, b"!" * 65536)
    with pytest.raises(ModelCorruptError) as caught:
        load(settings)
    assert_one_line_naming_the_fix(caught.value, model)


def test_a_block_changed_behind_the_file_systems_back_is_caught_by_the_samples(settings, model):
    load(settings)
    marker = model.with_name(model.name + ".verified")
    recorded = json.loads(marker.read_text())
    first_sample_after_header = model_files._sample_offsets(SIZE)[1]
    overwrite_keeping_mtime(model, first_sample_after_header, b"\0" * 16)
    # What a disk returning other bytes looks like: the file's identity is what was verified.
    identity = model_files._identity(model)
    marker.write_text(json.dumps({**recorded, **identity}))
    with pytest.raises(ModelCorruptError, match="sampled blocks changed") as caught:
        load(settings)
    assert_one_line_naming_the_fix(caught.value, model)


def test_a_truncated_model_is_caught(settings, model):
    load(settings)
    with open(model, "r+b") as handle:
        handle.truncate(SIZE // 2)
    with pytest.raises(ModelCorruptError):
        load(settings)


def test_an_intact_model_is_trusted_without_rehashing(settings, model, monkeypatch):
    load(settings)
    monkeypatch.setattr(model_files, "_sha256_file", lambda path: pytest.fail("re-hashed an unchanged model"))
    assert load(settings) == model


def test_doctor_hashes_all_of_it(settings, model):
    verify_model_file(model, SHA)
    overwrite_keeping_mtime(model, SIZE - 10, b"x")
    with pytest.raises(ModelCorruptError) as caught:
        verify_model_file(model, SHA)
    assert_one_line_naming_the_fix(caught.value, model)


def test_deleting_the_damaged_file_as_told_reassembles_it(settings, tmp_path, model):
    parts = sorted((tmp_path / "parts").iterdir())
    overwrite_keeping_mtime(model, 1000, b"damage")
    with pytest.raises(ModelCorruptError):
        load(settings, find_parts=lambda: parts)
    model.unlink()
    assert load(settings, find_parts=lambda: parts).read_bytes() == CONTENT


def test_the_cli_reports_a_damaged_model_in_one_line(settings, model, monkeypatch, tmp_path):
    """`pakus ask` on a damaged packaged model: one line and exit 1, never an answer of "!!!!"."""
    from click.testing import CliRunner

    import rag.bot
    from conftest import FakeEmbedder, write_tiny_documents
    from rag.cli import main

    write_tiny_documents(tmp_path)
    for name in list(os.environ):
        if name.startswith("PAKUS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PAKUS_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("PAKUS_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setattr(rag.bot, "MiniLMEmbedder", FakeEmbedder)
    monkeypatch.setattr("rag.embedding.MiniLMEmbedder", FakeEmbedder)
    monkeypatch.setattr(model_files, "MODEL_SHA256", SHA)
    monkeypatch.setattr(model_files.default_gguf_path, "__kwdefaults__",
                        {"find_parts": lambda: [], "sha256": SHA, "size": SIZE})
    overwrite_keeping_mtime(model, SIZE // 2, b"!" * (1 << 20))
    result = CliRunner().invoke(main, ["ask", "What is the Coalition Support Fund?"])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()[-1:]
    assert line.startswith("pakus: error: ") and "damaged" in line and f"rm {model}" in line
    assert result.stdout == ""


@pytest.mark.real_model
def test_a_corrupt_prompt_state_file_is_replaced_not_trusted(tmp_path):
    """The llama.cpp prefix state saved between processes, overwritten with garbage: warm-up must
    ignore it (and replace it), and the answer is the one a fresh evaluation gives."""
    from rag.generators.llama_cpp import LlamaCppGenerator
    from rag.generators.model_files import default_gguf_path as packaged

    generator = LlamaCppGenerator(packaged(Settings.from_env()), threads=2, context_tokens=512, state_dir=tmp_path)
    prefix = [{"role": "system", "content": "You answer in one word."}]
    messages = [*prefix, {"role": "user", "content": "Say yes."}]
    state = generator._prefix_file(generator.chat_tokens(prefix, add_generation_prompt=False))
    state.write_bytes(b"\0garbage" * 4096)  # what a crash of the disk, not of pakus, leaves
    generator.warm_up(prefix)  # must not crash, nor keep a cache built from garbage
    answer = "".join(generator.stream(messages, max_tokens=4))
    assert state.is_file() and state.read_bytes()[:8] != b"\0garbage"  # replaced by a good one
    generator._llm.reset()
    assert "".join(generator.stream(messages, max_tokens=4)) == answer  # as from nothing
