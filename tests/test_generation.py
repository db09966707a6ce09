"""What the two generator backends share: stop strings cut across token boundaries, one stream at
a time, and argument checks. (The backends themselves run in test_generation_real.py.)"""

from __future__ import annotations

import pytest

from rag.errors import GenerationError
from rag.generators.base import Busy, StopFilter, check_context, check_max_tokens


def feed_all(pieces, stop):
    stops = StopFilter(stop)
    out = []
    for piece in pieces:
        out.append(stops.feed(piece))
        if stops.stopped:
            break
    out.append(stops.flush())
    return "".join(out), stops.stopped


def test_a_stop_string_split_across_pieces_is_cut():
    assert feed_all(["The fund [", "ST", "OP] more"], ["[STOP]"]) == ("The fund ", True)


def test_a_near_miss_is_released_as_text():
    assert feed_all(["The fund [", "ST", "AR]"], ["[STOP]"]) == ("The fund [STAR]", False)


def test_text_that_could_start_a_stop_string_is_held_back_until_decided():
    stops = StopFilter(["\n"])
    assert stops.feed("one line") == "one line"
    stops = StopFilter(["END"])
    assert stops.feed("the E") == "the "  # "E" may become "END"
    assert stops.feed("ast") == "East"


def test_without_stop_strings_everything_passes():
    assert feed_all(["a", "b"], []) == ("ab", False)


def test_one_stream_at_a_time_from_the_same_thread_is_an_error_not_a_deadlock():
    busy = Busy()
    busy.acquire()
    with pytest.raises(GenerationError, match="still streaming"):
        busy.acquire()
    busy.release()
    busy.acquire()  # free again
    busy.release()


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10"])
def test_max_tokens_must_be_a_positive_whole_number(bad):
    with pytest.raises(GenerationError):
        check_max_tokens(bad)


def test_a_prompt_that_does_not_fit_says_what_to_change():
    check_context(3000, 120, 4096)
    with pytest.raises(GenerationError, match="PAKUS_K"):
        check_context(4000, 120, 4096)


# --- threads for llama.cpp: all cores, fewer while other processes keep cores busy -----------------


@pytest.mark.parametrize("busy, expected", [(0, 2), (1, 1), (6, 1), (None, 2)])
def test_llama_threads_leave_the_cores_other_processes_use(monkeypatch, busy, expected):
    from rag.generators import llama_cpp

    monkeypatch.setattr(llama_cpp, "busy_elsewhere", lambda: busy)
    monkeypatch.setattr(llama_cpp.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert llama_cpp.threads_free(2) == expected
    assert llama_cpp.thread_counts(2) == (2, 2)  # idle: every core for the prompt and for decoding


def test_busy_elsewhere_reads_the_running_count_on_linux():
    import sys

    from rag.generators.llama_cpp import busy_elsewhere

    busy = busy_elsewhere()
    if sys.platform.startswith("linux"):
        assert isinstance(busy, int) and busy >= 0
    else:
        assert busy is None
