"""The openai backend against a tiny fake server in this process (fast), and the bot's lock choice.

Each fault the backend must report (server not running, wrong port, a server that accepts and
never answers, HTTP 401/404/500, an unknown model, a stream cut in the middle, a response that is
not JSON) gets a scripted server and is checked to be one PakusError line naming the URL, raised
within a short timeout. The real server runs in test_generator_openai_real.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag.errors import ConfigError, GenerationError, ModelError, PakusError
from rag.generators.openai import OpenAIGenerator, ServerOptions
from rag.settings import Settings

TIMEOUT = 0.5  # seconds the client waits in these tests: a hang shows up as a slow test, not a stuck one
MESSAGES = [{"role": "system", "content": "Answer from the passages."}, {"role": "user", "content": "What is CSF?"}]


# --- a scriptable OpenAI-compatible server ---------------------------------------------------------


def chunk(content: str | None = None, finish: str | None = None) -> dict:
    delta = {"content": content} if content is not None else {}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


USAGE = {"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 57, "completion_tokens": 4, "total_tokens": 61}}
GOOD_EVENTS = [chunk("The Coalition"), chunk(" Support"), chunk(" Fund [1]."), chunk(finish="stop"), USAGE, "[DONE]"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        self.server.fake.route(self, "GET", None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.fake.route(self, "POST", json.loads(body))

    # helpers for scripts
    def send(self, status: int, body: bytes | dict, content_type: str = "application/json") -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")  # no kept-alive connection outlives stop()
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def start_events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def write_chunked(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def events(self, events, *, finish_body: bool = True) -> None:
        self.start_events()
        self.write_chunked(": ping\n\n")  # a keep-alive comment, as llama-cpp-python's server sends
        for event in events:
            self.write_chunked(f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n")
        if finish_body:  # else the body stops mid-way: the socket closes without its last chunk
            self.wfile.write(b"0\r\n\r\n")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that hangs up early (a stop string, a timeout) is part of the script


class FakeServer:
    """ThreadingHTTPServer on a free loopback port; `models` answers /models, `chat` /chat/completions."""

    def __init__(self) -> None:
        self.models = lambda h: h.send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        self.chat = lambda h, body: h.events(GOOD_EVENTS)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()
        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.fake = self
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def route(self, handler: Handler, method: str, body: dict | None) -> None:
        self.headers.append(dict(handler.headers))
        if handler.path == "/v1/models" and method == "GET":
            return self.models(handler)
        if handler.path == "/v1/chat/completions" and method == "POST":
            self.requests.append(body)
            with self._lock:
                self.active += 1
                self.most_active = max(self.most_active, self.active)
            try:
                return self.chat(handler, body)
            finally:
                with self._lock:
                    self.active -= 1
        handler.send(404, b"<html>Not Found</html>", "text/html")

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.stop()


def generator_for(url: str, **options) -> OpenAIGenerator:
    return OpenAIGenerator(ServerOptions(base_url=url, timeout=TIMEOUT, **options))


def answer(generator: OpenAIGenerator, **options) -> str:
    return "".join(generator.stream(MESSAGES, max_tokens=options.pop("max_tokens", 32), **options))


def refused_url() -> str:
    with socket.socket() as s:  # bound and closed: nobody listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def assert_one_line(error: PakusError, *words: str) -> None:
    message = str(error)
    assert "\n" not in message and len(message) < 400, message
    for word in words:
        assert word in message, message


# --- streaming, request and usage --------------------------------------------------------------


def test_streams_pieces_and_reports_the_servers_usage(server):
    generator = generator_for(server.url)
    assert generator.model == "fake-model" and generator.backend == "openai" and generator.concurrent
    stream = generator.stream(MESSAGES, max_tokens=32)
    pieces = list(stream)
    assert pieces == ["The Coalition", " Support", " Fund [1]."]
    assert stream.usage == {"prompt_tokens": 57, "completion_tokens": 4} and stream.finish_reason == "stop"


def test_the_request_is_greedy_streams_usage_and_keeps_messages_as_built(server):
    generator = generator_for(server.url, model="fake-model", api_key="sekret")
    answer(generator, max_tokens=7, stop=["\n"])
    [body] = server.requests
    assert body["messages"] == MESSAGES  # the system message first, unchanged: the server's prefix cache holds
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0 and body["top_k"] == 1 and body["repeat_penalty"] == 1.0 and body["seed"] == 0
    assert body["cache_prompt"] is True and body["max_tokens"] == 7 and body["stop"] == ["\n"]
    assert body["model"] == "fake-model"
    assert server.headers[-1]["Authorization"] == "Bearer sekret"


def test_a_stop_string_the_server_ignored_ends_the_answer_before_it(server):
    server.chat = lambda h, body: h.events([chunk("Coalition [ST"), chunk("OP] more"), chunk(" text"), chunk(finish="length"), "[DONE]"])
    generator = generator_for(server.url)
    assert answer(generator, stop=["[STOP]"]) == "Coalition "


def test_extra_body_can_be_emptied_for_strict_servers(server, monkeypatch):
    monkeypatch.setenv("PAKUS_OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("PAKUS_OPENAI_EXTRA_BODY", "{}")
    generator = OpenAIGenerator(ServerOptions.from_env())
    answer(generator)
    assert "repeat_penalty" not in server.requests[0] and server.requests[0]["temperature"] == 0


def test_load_generator_builds_it_from_the_environment_once(server, monkeypatch):
    from rag.generators import load_generator

    monkeypatch.setenv("PAKUS_OPENAI_BASE_URL", server.url + "/")
    monkeypatch.setenv("PAKUS_OPENAI_TIMEOUT", "2.5")
    generator = load_generator(Settings(backend="openai"))
    assert isinstance(generator, OpenAIGenerator) and generator.base_url == server.url
    assert generator.options.timeout == 2.5 and generator.model_name == f"fake-model at {server.url}"
    assert load_generator(Settings(backend="openai")) is generator


@pytest.mark.parametrize("name, value, words", [
    ("BASE_URL", "", ["PAKUS_OPENAI_BASE_URL"]),
    ("BASE_URL", "localhost:8000", ["http(s) URL"]),
    ("TIMEOUT", "soon", ["PAKUS_OPENAI_TIMEOUT"]),
    ("TIMEOUT", "0", ["PAKUS_OPENAI_TIMEOUT"]),
    ("MAX_IN_FLIGHT", "0", ["PAKUS_OPENAI_MAX_IN_FLIGHT"]),
    ("EXTRA_BODY", "[1]", ["PAKUS_OPENAI_EXTRA_BODY"]),
])
def test_bad_options_are_named(name, value, words):
    environ = {"PAKUS_OPENAI_BASE_URL": "http://127.0.0.1:8000/v1", f"PAKUS_OPENAI_{name}": value}
    with pytest.raises(ConfigError) as error:
        ServerOptions.from_env(environ)
    assert_one_line(error.value, *words)


def test_openai_is_a_valid_backend():
    assert Settings(backend="openai").backend == "openai"


# --- faults: each one line naming the URL, none a hang -------------------------------------------------


def test_server_not_running():
    url = refused_url()
    with pytest.raises(ModelError) as error:
        generator_for(url)
    assert_one_line(error.value, url, "is the server running", "pakus model path")


def test_server_gone_after_loading(server):
    generator = generator_for(server.url)
    server.stop()
    with pytest.raises(GenerationError) as error:
        answer(generator)
    assert_one_line(error.value, server.url, "cannot connect")


def test_wrong_port_another_web_server(server):
    server.models = lambda h: h.send(404, b"<html>Not Found</html>", "text/html")
    with pytest.raises(ModelError) as error:
        generator_for(server.url)
    assert_one_line(error.value, f"{server.url}/models", "HTTP 404", "/v1")


@pytest.mark.parametrize("where", ["models", "chat"])
def test_a_server_that_accepts_and_never_answers_times_out(server, where):
    hold = threading.Event()
    if where == "models":
        server.models = lambda h: hold.wait(10)
    else:
        server.chat = lambda h, body: hold.wait(10)
    started = time.monotonic()
    try:
        with pytest.raises(PakusError) as error:
            answer(generator_for(server.url))
    finally:
        hold.set()
    assert time.monotonic() - started < TIMEOUT * 4
    assert_one_line(error.value, "accepted the connection but sent nothing", "PAKUS_OPENAI_TIMEOUT")


def test_a_stream_that_stalls_half_way_times_out(server):
    hold = threading.Event()

    def stall(h, body):
        h.start_events()
        h.write_chunked(f"data: {json.dumps(chunk('The Coalition'))}\n\n")
        hold.wait(10)

    server.chat = stall
    generator = generator_for(server.url)
    received = []
    try:
        with pytest.raises(GenerationError) as error:
            for piece in generator.stream(MESSAGES, max_tokens=32):
                received.append(piece)
    finally:
        hold.set()
    assert received == ["The Coalition"]
    assert_one_line(error.value, "stalled", "not an answer")


def test_http_401_asks_for_a_key(server):
    server.models = lambda h: h.send(401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}})
    with pytest.raises(ModelError) as error:
        generator_for(server.url)
    assert_one_line(error.value, "HTTP 401: Invalid API key", "PAKUS_OPENAI_API_KEY")


def test_http_401_while_answering(server):
    generator = generator_for(server.url)
    server.chat = lambda h, body: h.send(401, {"detail": "Unauthorized"})
    with pytest.raises(GenerationError) as error:
        answer(generator)
    assert_one_line(error.value, "HTTP 401", "PAKUS_OPENAI_API_KEY", f"{server.url}/chat/completions")


def test_http_404_on_chat_is_a_wrong_base_url(server):
    generator = generator_for(server.url)
    server.chat = lambda h, body: h.send(404, b"<html>Not Found</html>", "text/html")
    with pytest.raises(GenerationError) as error:
        answer(generator)
    assert_one_line(error.value, "HTTP 404", "PAKUS_OPENAI_BASE_URL")


def test_http_500(server):
    generator = generator_for(server.url)
    server.chat = lambda h, body: h.send(500, b"Internal Server Error", "text/plain")
    with pytest.raises(GenerationError) as error:
        answer(generator)
    assert_one_line(error.value, "HTTP 500: Internal Server Error", "server's log", server.url)


def test_unknown_model_name_at_load(server):
    with pytest.raises(ModelError) as error:
        generator_for(server.url, model="gpt-9")
    assert_one_line(error.value, "'gpt-9'", "fake-model", "PAKUS_OPENAI_MODEL")


def test_unknown_model_name_while_answering(server):
    server.models = lambda h: h.send(404, {"detail": "Not Found"})  # a server without the listing
    generator = generator_for(server.url, model="gpt-9")
    server.chat = lambda h, body: h.send(404, {"error": {"message": "The model `gpt-9` does not exist.", "code": 404}})
    with pytest.raises(GenerationError) as error:
        answer(generator)
    assert_one_line(error.value, "does not know model 'gpt-9'", "PAKUS_OPENAI_MODEL")


def test_several_models_and_none_chosen(server):
    server.models = lambda h: h.send(200, {"data": [{"id": "a"}, {"id": "b"}]})
    with pytest.raises(ConfigError) as error:
        generator_for(server.url)
    assert_one_line(error.value, "a, b", "PAKUS_OPENAI_MODEL")


def test_a_stream_cut_in_the_middle_raises_after_what_was_shown(server):
    server.chat = lambda h, body: h.events([chunk("The Coalition"), chunk(" Support")], finish_body=False)
    generator = generator_for(server.url)
    received = []
    with pytest.raises(GenerationError) as error:
        for piece in generator.stream(MESSAGES, max_tokens=32):
            received.append(piece)
    assert received == ["The Coalition", " Support"]
    assert_one_line(error.value, "cut off", "not an answer")


@pytest.mark.parametrize("events, words", [
    ([chunk("The Coalition")], "without a finish_reason or [DONE]"),  # the body ends cleanly, early
    # llama-cpp-python's server interrupting a stream for the next request: [DONE] but no finish
    ([chunk("The Coalition"), "[DONE]"], "with [DONE] but no finish_reason"),
])
def test_a_stream_that_ends_cleanly_but_early_is_also_cut(server, events, words):
    server.chat = lambda h, body: h.events(events)
    with pytest.raises(GenerationError) as error:
        answer(generator_for(server.url))
    assert_one_line(error.value, words, "not an answer", "--interrupt_requests false")


def test_a_response_that_is_not_an_event_stream(server):
    generator = generator_for(server.url)
    server.chat = lambda h, body: h.send(200, b"<html><body>Welcome to nginx!</body></html>", "text/html")
    with pytest.raises(GenerationError) as error:
        answer(generator)
    assert_one_line(error.value, "not an event stream", "PAKUS_OPENAI_BASE_URL")


def test_events_that_are_not_json(server):
    generator = generator_for(server.url)
    server.chat = lambda h, body: h.events(["{not json"])
    with pytest.raises(GenerationError) as error:
        answer(generator)
    assert_one_line(error.value, "not a JSON object", server.url)


def test_a_model_list_that_is_not_json(server):
    server.models = lambda h: h.send(200, b"hello", "text/plain")
    with pytest.raises(ModelError) as error:
        generator_for(server.url)
    assert_one_line(error.value, "model list in JSON", "/v1")


def test_an_error_event_in_the_stream(server):
    generator = generator_for(server.url)
    server.chat = lambda h, body: h.events([chunk("The"), {"error": {"message": "out of memory"}}])
    with pytest.raises(GenerationError) as error:
        answer(generator)
    assert_one_line(error.value, "out of memory")


# --- concurrency ---------------------------------------------------------------------------------


def test_requests_in_flight_are_bounded(server):
    release = threading.Event()

    def slow(h, body):
        release.wait(5)
        h.events(GOOD_EVENTS)

    server.chat = slow
    generator = generator_for(server.url, max_in_flight=2)
    generator._client.timeout = __import__("httpx").Timeout(10)
    results = []
    threads = [threading.Thread(target=lambda: results.append(answer(generator))) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while server.active < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # room for a third request to arrive if the bound did not hold
    assert server.active == 2
    release.set()
    for thread in threads:
        thread.join(10)
    assert server.most_active == 2 and len(results) == 4


class BlockingGenerator:
    """Each stream waits at a barrier for a second stream: two at once succeed, one at a time never does."""

    backend = "blocking"
    model_name = "blocking"

    def __init__(self, concurrent: bool):
        self.concurrent = concurrent
        self.barrier = threading.Barrier(2, timeout=1)

    def stream(self, messages, *, max_tokens, stop=()):
        self.barrier.wait()
        yield "The Coalition Support Fund [1]."

    def count_tokens(self, text):
        return len(text.split())


@pytest.mark.parametrize("concurrent", [True, False])
def test_the_bot_holds_its_model_lock_only_for_serial_generators(concurrent):
    from rag.bot import Bot

    bot = Bot(Settings(), generator=BlockingGenerator(concurrent))
    outcomes = []

    def generate():
        try:
            "".join(bot._generate(MESSAGES, {"first_token": None}))
            outcomes.append("answered")
        except threading.BrokenBarrierError:
            outcomes.append("waited")

    threads = [threading.Thread(target=generate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert outcomes == (["answered", "answered"] if concurrent else ["waited", "waited"])


def test_the_bot_reports_the_streams_own_token_counts(server):
    from rag.bot import Bot

    bot = Bot(Settings(), generator=generator_for(server.url))
    state = {"first_token": None}
    items = bot._generate(MESSAGES, state)
    text = "".join(items)
    assert text == "The Coalition Support Fund [1]."
    assert state["usage"] == [(MESSAGES, {"prompt_tokens": 57, "completion_tokens": 4})]


# --- pakus model path: the packaged model, for a server ---------------------------------------------


def test_model_path_prints_the_packaged_gguf(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from rag import cli
    from rag.generators import model_files

    monkeypatch.setattr(model_files, "default_gguf_path", lambda settings: tmp_path / "model.gguf")
    result = CliRunner().invoke(cli.main, ["model", "path"])
    assert result.exit_code == 0 and result.stdout == f"{tmp_path / 'model.gguf'}\n"


def test_model_path_without_the_model_packages_is_one_line(monkeypatch):
    from click.testing import CliRunner

    from rag import cli
    from rag.errors import ModelMissingError
    from rag.generators import model_files

    def missing(settings):
        raise ModelMissingError("the language model packages are not installed; run `pip install -e .`")

    monkeypatch.setattr(model_files, "default_gguf_path", missing)
    result = CliRunner().invoke(cli.main, ["model", "path"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "pip install" in result.stderr
