"""The benchmark scripts' pure parts: derived rates, target verdicts, tables, child measurement."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def speed():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("speed")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_rates_are_derived_from_token_counts_and_timings(speed):
    timings = {"retrieval": 0.5, "first_token": 2.5, "total": 4.5, "prompt_tokens": 400, "completion_tokens": 41}
    prefill, decode = speed._rates(timings)
    assert prefill == pytest.approx(400 / 2.0)
    assert decode == pytest.approx(40 / 2.0)  # the first token is part of the prefill


def test_rates_reported_by_the_generator_win_and_missing_counts_give_none(speed):
    assert speed._rates({"prefill_tokens_per_s": 90.0, "decode_tokens_per_s": 20.0}) == (90.0, 20.0)
    assert speed._rates({"first_token": 1.0, "total": 1.0}) == (None, None)


def test_targets_compare_every_measured_figure_with_its_limit(speed):
    results = {
        "help": {"help_s": 0.12, "command": "pakus"},
        "cold": {"cold_ask_s": 14.0, "peak_rss_gib": 1.9},
        "retrieval": {"retrieval_p50_s": 0.02, "retrieval_p95_s": 0.03, "questions": 40},
        "answers": {"llama-cpp": {"first_token_p50_s": 2.0, "total_p50_s": 6.0, "peak_rss_gib": 2.0,
                                  "answered": 5, "questions": 5}},
    }
    verdicts = {c["target"]: c["verdict"] for c in speed.targets(results)}
    assert verdicts["pakus --help"] == "PASS"
    assert verdicts["cold `pakus ask`"] == "MISS"
    assert verdicts["warm time to first token (median) [llama-cpp]"] == "PASS"
    assert verdicts["warm answer total (median) [llama-cpp]"] == "MISS"
    assert verdicts["peak memory of an ask process [llama-cpp]"] == "PASS"
    assert "targets" in speed.render({"machine": {"cpus": 2, "load_average_1m": 0.1, "python": "3"}, **results,
                                      "targets": speed.targets(results)})


def test_run_child_measures_this_childs_own_memory(speed):
    import json
    import subprocess

    # A child's peak includes the parent's memory at fork time (before exec), and this pytest
    # process may hold loaded models by now: measure from a small fresh parent, as the benchmark
    # scripts themselves are.
    script = (
        f"import sys, json; sys.path.insert(0, {str(BENCHMARKS)!r}); import _common\n"
        "small = _common.run_child([sys.executable, '-c', 'pass'])\n"
        "big = _common.run_child([sys.executable, '-c', \"x = bytearray(300 * 1024 * 1024); x[::4096] = b'1' * len(x[::4096])\"])\n"
        "code = _common.run_child([sys.executable, '-c', \"import sys; print('hi'); sys.exit(3)\"])\n"
        "print(json.dumps([small.max_rss, big.max_rss, small.returncode, big.returncode, code.returncode, code.stdout]))\n"
    )
    small_rss, big_rss, small_code, big_code, exit_code, stdout = json.loads(
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    assert small_code == 0 and big_code == 0
    assert big_rss > 300 * 1024 * 1024
    assert big_rss - small_rss > 200 * 1024 * 1024
    assert exit_code == 3 and stdout == "hi\n"


def test_table_aligns_columns(speed):
    import _common

    text = _common.table([["a", "1"], ["long name", "22"]], ["", "value"])
    assert text.splitlines() == ["           value", "---------  -----", "a              1", "long name     22"]


def test_scale_figures_compare_the_collection_with_its_slice_and_the_seeds():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        scale = importlib.import_module("scale")
    finally:
        sys.path.remove(str(BENCHMARKS))
    figures = {"build": {"wall_s": 200.0}, "second_add_s": 1.0, "add_one_s": 1.2, "remove_one_s": 0.8,
               "warm": {"search_p50_ms": 15.0, "search_p95_ms": 20.0, "recall_at_5": 0.90},
               "warm_slice": {"recall_at_5": 0.95},
               "cold": {"search_full_s": 1.5, "search_seeds_s": 1.0, "ask_full_s": 6.0, "ask_slice_s": 5.5, "ask_seeds_s": 9.0,
                        "ask_full_max_rss_mb": 2100.0, "ask_seeds_max_rss_mb": 2000.0}}
    summary = scale.summary(figures)
    assert summary["cold_ask_extra_s"] == pytest.approx(0.5)  # the same question on the slice, not the seeds'
    assert summary["cold_search_extra_s"] == pytest.approx(0.5)
    assert summary["ask_memory_extra_mb"] == pytest.approx(100.0)
    assert summary["recall_drop_points"] == pytest.approx(5.0)
    assert scale.summary({"store": "embedded"})["build_s"] is None  # a reused collection has no build figure
