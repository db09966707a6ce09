"""The openai backend against a real OpenAI-compatible server: llama-cpp-python's, started on the
packaged model on a free loopback port for this module and stopped at its end (marked: loads the
real model; a few answers only, each takes seconds on 2 cores).

Facts, not wording, as in test_answers_real.py: the same question through the server names the
Coalition Support Fund and cites the review paper, text streams before the Answer, and a
follow-up in a Chat is rewritten and answered.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from rag.bot import Bot, Chat
from rag.errors import ModelError
from rag.generators.openai import OpenAIGenerator, ServerOptions
from rag.settings import Settings

pytestmark = pytest.mark.real_model

REVIEW_PAPER = "seeds/pakistan-us-strategic-partnership-review.md"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(model: str, port: int, threads: int, decode_threads: int) -> list[str]:
    """llama-cpp-python's server with the in-process backend's settings, so answers can match."""
    from rag.generators.llama_cpp import LLAMA_FLASH_ATTN, LLAMA_N_BATCH, LLAMA_N_UBATCH

    return [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", "2048", "--n_batch", str(LLAMA_N_BATCH), "--n_ubatch", str(LLAMA_N_UBATCH), "--flash_attn", str(LLAMA_FLASH_ATTN).lower(),
            "--n_threads", str(decode_threads), "--n_threads_batch", str(threads),
            # One model serves one request at a time; a second one must wait, not cut the first short.
            "--interrupt_requests", "false"]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    import httpx

    from rag.generators.llama_cpp import threads_free
    from rag.generators.model_files import default_gguf_path

    settings = Settings.from_env()
    model = default_gguf_path(settings)  # assembled from the packages on a fresh machine
    # The server cannot adapt its threads as the in-process backend does: it gets what is free now.
    threads = decode_threads = threads_free(settings.threads)
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(server_command(str(model), port, threads, decode_threads), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer within 180 s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def openai_env(server_url, monkeypatch):
    monkeypatch.setenv("PAKUS_OPENAI_BASE_URL", server_url)
    monkeypatch.setenv("PAKUS_OPENAI_TIMEOUT", "120")  # a 2-core CI machine under load
    for name in ("PAKUS_OPENAI_MODEL", "PAKUS_OPENAI_API_KEY", "PAKUS_OPENAI_EXTRA_BODY", "PAKUS_OPENAI_MAX_IN_FLIGHT"):
        monkeypatch.delenv(name, raising=False)
    return server_url


def test_a_seeds_question_streams_and_cites_through_the_server_and_a_follow_up_works(openai_env):
    chat = Chat(Bot(Settings(backend="openai")))
    items = list(chat.ask_stream("What is CSF?"))
    pieces, answer = items[:-1], items[-1]
    assert len(pieces) >= 3 and all(isinstance(piece, str) for piece in pieces)  # text as it comes
    assert answer.answered and "coalition support fund" in answer.answer.lower()
    assert any(c.source == REVIEW_PAPER and c.supported for c in answer.citations)
    assert answer.timings["backend"] == "openai" and openai_env in answer.timings["model"]
    assert answer.timings["first_token"] < answer.timings["total"]

    follow_up = chat.ask("How much of the funds did it account for?")
    assert follow_up.rewritten_question and follow_up.rewritten_question != "How much of the funds did it account for?"
    assert follow_up.answered and "third" in follow_up.answer.lower()


def test_a_model_name_the_server_does_not_serve_is_refused_at_load(openai_env):
    with pytest.raises(ModelError) as error:
        OpenAIGenerator(ServerOptions(base_url=openai_env, model="no-such-model"))
    assert "no-such-model" in str(error.value) and "PAKUS_OPENAI_MODEL" in str(error.value)
