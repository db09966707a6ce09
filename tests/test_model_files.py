"""Assembling, verifying and resolving the model file, on small fake parts in a temp dir."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from rag.generators import model_files
from rag.errors import ModelCorruptError, ModelMissingError
from rag.generators.model_files import MODEL_FILENAME, assemble_gguf, default_gguf_path, find_part_files, resolve_model
from rag.settings import Settings

CONTENTS = [b"GGUF" + b"a" * 1000, b"b" * 3000, b"c" * 17]
EXPECTED = b"".join(CONTENTS)
SHA = hashlib.sha256(EXPECTED).hexdigest()


@pytest.fixture
def parts(tmp_path: Path) -> list[Path]:
    paths = []
    for n, data in enumerate(CONTENTS, start=1):
        path = tmp_path / "parts" / f"part{n:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(project_root=tmp_path, cache_dir=tmp_path / "cache")


def assemble(settings: Settings, parts: list[Path], **kwargs) -> Path:
    options = {"find_parts": lambda: parts, "sha256": SHA, "size": len(EXPECTED)} | kwargs
    return default_gguf_path(settings, **options)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".partial"))


def test_assembles_parts_in_order_into_the_cache(settings, parts, capsys):
    path = assemble(settings, parts)
    assert path == settings.cache_dir / "models" / MODEL_FILENAME
    assert path.read_bytes() == EXPECTED
    assert leftovers(path.parent) == []
    assert "assembling" in capsys.readouterr().err  # progress on stderr, nothing on stdout


def test_hash_mismatch_raises_and_leaves_no_file(settings, parts):
    with pytest.raises(ModelCorruptError, match="reinstall"):
        assemble(settings, parts, sha256="0" * 64)
    models = settings.cache_dir / "models"
    assert not (models / MODEL_FILENAME).exists()
    assert leftovers(models) == []


def test_size_mismatch_fails_before_writing(settings, parts):
    with pytest.raises(ModelCorruptError, match="bytes"):
        assemble(settings, parts, size=len(EXPECTED) + 1)
    assert not (settings.cache_dir / "models" / MODEL_FILENAME).exists()


def test_writes_to_a_temporary_name_then_renames(tmp_path, parts, monkeypatch):
    dest = tmp_path / "out" / "model.gguf"
    renames = []
    real_replace = os.replace

    def spy(src, dst):
        if Path(dst) == dest:
            renames.append(Path(src))
            assert Path(src).read_bytes() == EXPECTED and not dest.exists()  # complete before the rename
        real_replace(src, dst)

    monkeypatch.setattr(model_files.os, "replace", spy)
    assemble_gguf(parts, dest, sha256=SHA, size=len(EXPECTED))
    assert len(renames) == 1
    assert renames[0].parent == dest.parent and renames[0].name.endswith(".partial")
    assert dest.read_bytes() == EXPECTED


def test_marker_skips_rehash_until_the_file_changes(settings, parts, monkeypatch):
    path = assemble(settings, parts)
    calls = []
    real_hash = model_files._sha256_file
    monkeypatch.setattr(model_files, "_sha256_file", lambda p: calls.append(p) or real_hash(p))

    assert assemble(settings, parts) == path
    assert calls == []  # marker matched: no re-hash

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert assemble(settings, parts) == path
    assert calls == [path]  # mtime changed: hashed once, then the marker is refreshed
    assert assemble(settings, parts) == path
    assert calls == [path]


def test_damaged_cached_file_raises_with_fix(settings, parts):
    path = assemble(settings, parts)
    path.write_bytes(EXPECTED[:-1] + b"X")  # same size, different content, new mtime
    with pytest.raises(ModelCorruptError, match="delete it"):
        assemble(settings, parts)


def test_missing_packages_name_the_install_command(monkeypatch):
    monkeypatch.setattr(model_files.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelMissingError, match=r"pip install -e \."):
        find_part_files()


def test_resolve_model_prefers_an_explicit_path(tmp_path):
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    assert resolve_model(Settings(cache_dir=tmp_path, model_path=gguf)) == gguf

    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert resolve_model(Settings(cache_dir=tmp_path, model_path=folder, backend="transformers")) == folder
    with pytest.raises(ModelMissingError, match="not a GGUF file"):
        resolve_model(Settings(cache_dir=tmp_path, model_path=folder, backend="llama-cpp"))
    with pytest.raises(ModelMissingError, match="does not exist"):
        resolve_model(Settings(cache_dir=tmp_path, model_path=tmp_path / "nope.gguf"))
    not_gguf = tmp_path / "notes.txt"
    not_gguf.write_text("hello")
    with pytest.raises(ModelMissingError, match="not a GGUF"):
        resolve_model(Settings(cache_dir=tmp_path, model_path=not_gguf))


def test_installed_parts_are_found_in_order():
    try:
        files = find_part_files()
    except ModelMissingError:
        pytest.skip("model packages not installed")
    assert [f.name for f in files] == [f"part{n:02d}.bin" for n in range(1, 23)]
    assert sum(f.stat().st_size for f in files) == model_files.MODEL_SIZE
