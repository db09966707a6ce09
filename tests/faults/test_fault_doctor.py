"""`pakus doctor`: exit 0 only when all is well; each problem named with the command that fixes
it; --json for machines. The collection damage it reports is in test_fault_index.py; here, the
installation: the model, the folders, the libraries, a stale collection.
"""

from __future__ import annotations

import hashlib
import json

from faultkit import cli, project  # noqa: F401 - fixtures
from rag.generators import model_files


def findings(result) -> dict[str, list[dict]]:
    by_check: dict[str, list[dict]] = {}
    for finding in json.loads(result.stdout)["findings"]:
        by_check.setdefault(finding["check"], []).append(finding)
    return by_check


def test_a_healthy_installation_exits_0_and_says_so(cli):  # noqa: F811
    result = cli("doctor", "--quick")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "all is well"
    assert "PROBLEM" not in result.stdout
    data = json.loads(cli("doctor", "--quick", "--json").stdout)
    assert data["ok"] is True
    checks = {f["check"] for f in data["findings"]}
    assert {"pakus", "libraries", "model", "collection 'seeds'"} <= checks
    assert any("faiss-cpu" in f["detail"] for f in data["findings"] if f["check"] == "libraries")


def test_a_damaged_model_is_found_by_its_full_hash_with_the_fix(cli, project, monkeypatch):  # noqa: F811
    content = b"GGUF" + bytes(300_000)
    monkeypatch.setattr(model_files, "MODEL_SHA256", hashlib.sha256(content).hexdigest())
    model = project.cache / "models" / model_files.MODEL_FILENAME
    model.parent.mkdir(parents=True)
    model.write_bytes(content)
    assert cli("doctor").exit_code == 0  # hashed in full: intact
    with open(model, "r+b") as handle:
        handle.seek(150_000)
        handle.write(b"!")
    result = cli("doctor", "--json")
    assert result.exit_code == 1
    [finding] = findings(result)["model"]
    assert not finding["ok"] and "damaged" in finding["detail"]
    assert finding["fix"] == f"rm {model}; pakus model path  (assembles it again, 1.1 GB)"
    text = cli("doctor")
    assert f"        fix: rm {model}" in text.stdout and text.stdout.splitlines()[-1] == "1 problem found"


def test_a_data_folder_that_cannot_be_written_is_a_problem(cli, project, monkeypatch):  # noqa: F811
    blocker = project.root / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("PAKUS_HOME", str(blocker / "pakus"))
    result = cli("doctor", "--quick", "--json")
    assert result.exit_code == 1
    [finding] = findings(result)["data folder (PAKUS_HOME)"]
    assert not finding["ok"] and "PAKUS_HOME" in finding["fix"]


def test_a_missing_library_is_a_problem_naming_the_install_command(cli, monkeypatch):  # noqa: F811
    from importlib import metadata

    import rag.doctor

    real = metadata.version
    monkeypatch.setattr(rag.doctor.metadata, "version",
                        lambda name: (_ for _ in ()).throw(metadata.PackageNotFoundError(name)) if name == "faiss-cpu" else real(name))
    result = cli("doctor", "--quick", "--json")
    assert result.exit_code == 1
    problems = [f for f in findings(result)["libraries"] if not f["ok"]]
    assert problems == [{"check": "libraries", "ok": False, "detail": "not installed: faiss-cpu",
                         "fix": "pip install -e . (in the pakus checkout)", "repaired": False}]


def test_a_stale_collection_is_a_problem_naming_its_refresh_command(cli, project):  # noqa: F811
    (project.seeds / "cricket-notes.txt").write_text("Cricket notes\n\nThe team lost the final.\n")
    result = cli("doctor", "--quick", "--json")
    assert result.exit_code == 1
    [finding] = findings(result)["collection 'seeds'"]
    assert "out of date" in finding["detail"] and finding["fix"] == "pakus index build"
    assert cli("index", "build").exit_code == 0
    assert cli("doctor", "--quick").exit_code == 0


def test_leftovers_of_interrupted_writes_are_found_and_repaired(cli, project):  # noqa: F811
    (project.index / ".tmp-search-abc123").mkdir()
    (project.index / ".collection.json.tmp").write_text("{")
    result = cli("doctor", "--quick", "--json")
    assert result.exit_code == 1
    [finding] = findings(result)["collection 'seeds'"]
    assert ".tmp-search-abc123" in finding["detail"] and finding["fix"] == "pakus doctor --repair"
    assert cli("doctor", "--quick", "--repair").exit_code == 0
    assert not (project.index / ".tmp-search-abc123").exists() and not (project.index / ".collection.json.tmp").exists()
