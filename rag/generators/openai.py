"""The OpenAI-compatible backend of `Generator` (see base.py): chat completions streamed over HTTP
from any server that speaks that API (llama.cpp's server, llama-cpp-python's server, vLLM, Ollama).

    PAKUS_BACKEND=openai PAKUS_OPENAI_BASE_URL=http://127.0.0.1:8000/v1 pakus ask "What is CSF?"

Options (this plug-in's own, read here and not part of Settings):

- PAKUS_OPENAI_BASE_URL   the API root, usually ending in /v1 (required)
- PAKUS_OPENAI_MODEL      the model name to request; unset: the one model the server lists
- PAKUS_OPENAI_API_KEY    sent as a bearer token when set
- PAKUS_OPENAI_TIMEOUT    seconds to wait for a connection, and for each next piece of the answer
                          (default 60); a server that accepts and never answers fails after it
- PAKUS_OPENAI_MAX_IN_FLIGHT  requests this process sends at once (default 4); more wait here
- PAKUS_OPENAI_EXTRA_BODY JSON object merged into every request (default below); `{}` for a
                          server that rejects fields it does not know

Plain httpx rather than the official `openai` client: httpx is already installed (gradio needs
it), while the client would add a dependency whose defaults work against what pakus needs here:
it retries failed requests twice (a dead server then takes three timeouts to report), it hides
the raw event stream (a stream cut before `[DONE]` must be an error, not a short answer) and
non-standard fields such as llama.cpp's `repeat_penalty` go through an `extra_body` escape hatch
anyway. The protocol used is small: one POST with `stream: true`, server-sent events of JSON chunks.

Same answers as the in-process backends: greedy decoding (temperature 0, top_k 1, a fixed seed),
no repetition penalty (llama-cpp-python's server defaults to 1.1, which changes answers), and the
same stop rules (`StopFilter`; the stop strings are also sent so the server stops early). Prompt
caching is the server's job: messages go out exactly as the bot built them, the fixed system
message first, so a server's prefix cache (llama.cpp's `cache_prompt`, vLLM's prefix caching)
reuses it. Token counts come from the stream's own `usage` (`stream_options.include_usage`), no
extra requests; `count_tokens` is only an estimate (about 4 characters a token).

Every fault is one `ModelError` (at load: the server or model cannot be used) or
`GenerationError` (while answering) naming the URL and what to do, never a hang.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ConfigError, GenerationError, ModelError
from ..settings import Settings
from .base import StopFilter, check_max_tokens

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_IN_FLIGHT = 4
# Fields beyond the OpenAI API that the servers pakus targets understand (vLLM and Ollama ignore
# the ones they do not know): greedy and penalty-free like the local backends, and llama.cpp's
# prompt cache explicitly on.
DEFAULT_EXTRA_BODY = {"top_k": 1, "repeat_penalty": 1.0, "cache_prompt": True}
MAX_STOP_STRINGS = 4  # the OpenAI API's limit; longer lists are still applied here
SERVER_HINT = 'python -m llama_cpp.server --model "$(pakus model path)" --host 127.0.0.1 --port 8000 --interrupt_requests false'


@dataclass(frozen=True)
class ServerOptions:
    base_url: str
    model: str | None = None
    api_key: str | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    extra_body: str = json.dumps(DEFAULT_EXTRA_BODY)  # JSON text, so the options stay hashable

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServerOptions:
        environ = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = environ.get(f"PAKUS_OPENAI_{name}", "").strip()
            return value or None

        base_url = get("BASE_URL")
        if base_url is None:
            raise ConfigError(f"the openai backend needs PAKUS_OPENAI_BASE_URL, e.g. http://127.0.0.1:8000/v1 (a server started with: {SERVER_HINT})")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"PAKUS_OPENAI_BASE_URL must be an http(s) URL such as http://127.0.0.1:8000/v1, got {base_url!r}")
        values: dict = {"base_url": base_url.rstrip("/"), "model": get("MODEL"), "api_key": get("API_KEY")}
        if (raw := get("TIMEOUT")) is not None:
            try:
                values["timeout"] = float(raw)
            except ValueError:
                values["timeout"] = -1.0
            if not (0 < values["timeout"] < math.inf):
                raise ConfigError(f"PAKUS_OPENAI_TIMEOUT must be a positive number of seconds, got {raw!r}")
        if (raw := get("MAX_IN_FLIGHT")) is not None:
            if not raw.isdigit() or int(raw) < 1:
                raise ConfigError(f"PAKUS_OPENAI_MAX_IN_FLIGHT must be a positive whole number, got {raw!r}")
            values["max_in_flight"] = int(raw)
        if (raw := get("EXTRA_BODY")) is not None:
            try:
                extra = json.loads(raw)
            except ValueError:
                extra = None
            if not isinstance(extra, dict):
                raise ConfigError(f"PAKUS_OPENAI_EXTRA_BODY must be a JSON object such as {{}}, got {raw!r}")
            values["extra_body"] = json.dumps(extra, sort_keys=True)
        return cls(**values)


def cache_key(settings: Settings) -> tuple:
    return (ServerOptions.from_env(),)


def load(settings: Settings) -> OpenAIGenerator:
    return OpenAIGenerator(ServerOptions.from_env())


# --- faults as one line each ---------------------------------------------------------------------


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_message(body: bytes) -> str:
    """The server's own words from an error body: OpenAI's {"error": {"message"}}, FastAPI's
    {"detail"}, Ollama's {"error": "..."}, or the start of whatever text came back."""
    try:
        data = json.loads(body)
    except ValueError:
        return _one_line(body.decode("utf-8", errors="replace"))
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return _one_line(error if isinstance(error, str) else json.dumps(error))
    return _one_line(json.dumps(data))


def _is_unknown_model(message: str) -> bool:
    message = message.lower()
    return "model" in message and any(w in message for w in ("not found", "does not exist", "unknown", "no such", "not loaded"))


class OpenAIGenerator:
    """Chat completions from an OpenAI-compatible server; several streams may run at once."""

    backend = "openai"
    concurrent = True  # the bot takes no global lock around our calls; MAX_IN_FLIGHT bounds them

    def __init__(self, options: ServerOptions, *, check_model: bool = True):
        import httpx

        self.options = options
        self.base_url = options.base_url
        self._httpx = httpx
        headers = {}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        # connect, read (the wait for each next piece), write and pool all get the same limit.
        self._client = httpx.Client(
            timeout=httpx.Timeout(options.timeout),
            headers=headers,
            limits=httpx.Limits(max_connections=options.max_in_flight, max_keepalive_connections=options.max_in_flight),
            trust_env=False,  # a proxy from the environment must not sit between us and a loopback server
        )
        self._slots = threading.BoundedSemaphore(options.max_in_flight)
        self._extra = json.loads(options.extra_body)
        self.model = options.model
        if check_model:
            self.model = self._check_model()
        self.model_name = f"{self.model} at {self.base_url}"

    # --- one request at load: does the server answer, and does it serve the model? --------------

    def _check_model(self) -> str | None:
        """The model to request: PAKUS_OPENAI_MODEL when the server lists it, else its only model.

        One GET of /models when the backend loads (not per question): a dead server, a wrong URL,
        a refused key or an unknown model name show up before the first question, by name.
        """
        url = f"{self.base_url}/models"
        try:
            response = self._client.get(url)
        except self._httpx.HTTPError as exc:
            raise ModelError(self._transport_message(exc, url, started=False)) from None
        if response.status_code == 404 and self.model:
            return self.model  # a server without the listing: the first answer tells if the name is wrong
        if response.status_code != 200:
            raise ModelError(self._http_message(response.status_code, _error_message(response.content), url))
        try:
            served = [m["id"] for m in response.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise ModelError(f"{url} did not answer with a model list in JSON ({_one_line(response.text, 80)!r}); "
                             "PAKUS_OPENAI_BASE_URL should be an OpenAI-compatible API root, usually ending in /v1") from None
        if self.model is None:
            if len(served) == 1:
                return served[0]
            raise ConfigError(f"the server at {self.base_url} serves {len(served)} models ({_one_line(', '.join(served), 120)}); "
                              "choose one with PAKUS_OPENAI_MODEL")
        if self.model not in served:
            raise ModelError(f"the server at {self.base_url} does not serve model {self.model!r} (it serves: "
                             f"{_one_line(', '.join(served), 120) or 'nothing'}); set PAKUS_OPENAI_MODEL to one of those")
        return self.model

    def _transport_message(self, exc: Exception, url: str, *, started: bool) -> str:
        """One line for a connection that failed, stalled or broke; `started`: text had arrived."""
        httpx, timeout = self._httpx, f"{self.options.timeout:g} s"
        if isinstance(exc, httpx.ConnectTimeout):
            return f"no connection to {url} within {timeout}; check the host in PAKUS_OPENAI_BASE_URL and that the server is up"
        if isinstance(exc, httpx.ConnectError):
            return (f"cannot connect to {url} ({_one_line(exc, 80)}): is the server running, on that port? Start one with "
                    f"`{SERVER_HINT}` or fix PAKUS_OPENAI_BASE_URL")
        if isinstance(exc, httpx.TimeoutException):
            if started:
                return (f"the answer from {url} stalled for {timeout} in the middle; what was received is incomplete and is "
                        "not an answer (PAKUS_OPENAI_TIMEOUT sets the wait)")
            return (f"{url} accepted the connection but sent nothing for {timeout}; the server is stuck, overloaded or not "
                    "an OpenAI-compatible API (PAKUS_OPENAI_TIMEOUT sets the wait)")
        if started:
            return (f"the answer from {url} was cut off in the middle ({_one_line(exc, 80)}); what was received is incomplete "
                    "and is not an answer; see the server's log and ask again")
        return f"{url} closed the connection without answering ({_one_line(exc, 80)}); see the server's log"

    def _http_message(self, status: int, detail: str, url: str) -> str:
        said = f"HTTP {status}" + (f": {detail}" if detail else "")
        if status in (401, 403):
            return f"the server at {url} refused the request ({said}); set PAKUS_OPENAI_API_KEY to a key it accepts"
        if status in (400, 404) and _is_unknown_model(detail):
            return f"the server at {self.base_url} does not know model {self.model!r} ({said}); set PAKUS_OPENAI_MODEL to a model it serves"
        if status == 404:
            return f"nothing answers at {url} ({said}); PAKUS_OPENAI_BASE_URL should be the API root, usually ending in /v1"
        if status == 429:
            return f"the server at {url} is busy ({said}); ask again later or lower PAKUS_OPENAI_MAX_IN_FLIGHT"
        if status >= 500:
            return f"the server at {url} failed ({said}); see the server's log"
        hint = " (or set PAKUS_OPENAI_EXTRA_BODY={} if it rejects pakus's extra fields)" if status in (400, 422) else ""
        return f"the server at {url} rejected the request ({said}){hint}"

    # --- the Generator interface ----------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """An estimate (about 4 characters a token): the real counts come from the server's `usage`."""
        return math.ceil(len(text) / 4)

    def request_body(self, messages: list[dict[str, str]], *, max_tokens: int, stop: Sequence[str] = ()) -> dict:
        stops = [s for s in stop if s]
        body = {
            **self._extra,
            "messages": messages,  # exactly as built: the fixed system message first keeps the server's prefix cache useful
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "top_p": 1.0,
            "seed": 0,
        }
        if self.model:
            body["model"] = self.model
        if stops and len(stops) <= MAX_STOP_STRINGS:
            body["stop"] = stops
        return body

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, stop: Sequence[str] = ()) -> Stream:
        check_max_tokens(max_tokens)
        return Stream(self, self.request_body(messages, max_tokens=max_tokens, stop=stop), stop)

    def close(self) -> None:
        self._client.close()


class Stream:
    """The pieces of one answer. Once exhausted, `usage` holds the server's token counts (or None
    when it sent none). Closing it early (break, Ctrl-C) closes the connection, which tells the
    server to stop generating, and frees its slot."""

    def __init__(self, generator: OpenAIGenerator, body: dict, stop: Sequence[str]):
        self.usage: dict[str, int] | None = None
        self.finish_reason: str | None = None
        self._received = False  # whether any of the answer arrived (a fault is then a cut answer)
        self._pieces = self._run(generator, body, stop)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        self._pieces.close()

    def _run(self, generator: OpenAIGenerator, body: dict, stop: Sequence[str]) -> Iterator[str]:
        url = f"{generator.base_url}/chat/completions"
        with generator._slots:  # waits here while MAX_IN_FLIGHT requests are out
            try:
                with generator._client.stream("POST", url, json=body, headers={"Accept": "text/event-stream"}) as response:
                    if response.status_code != 200:
                        response.read()
                        raise GenerationError(generator._http_message(response.status_code, _error_message(response.content), url))
                    yield from self._events(response.iter_lines(), url, stop)
            except generator._httpx.HTTPError as exc:
                raise GenerationError(generator._transport_message(exc, url, started=self._received)) from None

    def _events(self, lines: Iterator[str], url: str, stop: Sequence[str]) -> Iterator[str]:
        """Parse server-sent events; yield the text through the stop filter; demand a proper end."""
        stops = StopFilter(stop)
        done = False
        for line in lines:
            if not line or line.startswith((":", "event:", "id:", "retry:")):
                continue  # blank separators, keep-alive comments (": ping") and other SSE fields
            if not line.startswith("data:"):
                raise GenerationError(f"the response from {url} is not an event stream of JSON ({_one_line(line, 80)!r}); "
                                      "PAKUS_OPENAI_BASE_URL should be an OpenAI-compatible API root, usually ending in /v1")
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                chunk = None
            if not isinstance(chunk, dict):
                raise GenerationError(f"the stream from {url} carried something that is not a JSON object ({_one_line(data, 80)!r}); "
                                      "is PAKUS_OPENAI_BASE_URL an OpenAI-compatible API?")
            if "error" in chunk:
                raise GenerationError(f"the server at {url} failed while answering ({_error_message(data.encode())}); see its log")
            if isinstance(chunk.get("usage"), dict):
                usage = chunk["usage"]
                self.usage = {"prompt_tokens": int(usage.get("prompt_tokens") or 0),
                              "completion_tokens": int(usage.get("completion_tokens") or 0)}
            for choice in chunk.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    self._received = True
                    text = stops.feed(content)
                    if text:
                        yield text
                    if stops.stopped:
                        # A stop string the server did not stop at itself (it stops before the ones
                        # it was sent): close now rather than read on to max_tokens. No usage then.
                        return
                if choice.get("finish_reason"):
                    self.finish_reason = choice["finish_reason"]
        if self.finish_reason is None:
            # Every server sends a finish_reason with the last piece. Without one the answer was cut:
            # the connection closed early, or the server gave up on it (llama-cpp-python's server
            # ends a stream with [DONE] when another request arrives, unless started with
            # --interrupt_requests false).
            how = "with [DONE] but no finish_reason" if done else "without a finish_reason or [DONE]"
            raise GenerationError(f"the stream from {url} ended {how}: the answer was cut off, what was received is "
                                  "not an answer (a llama-cpp-python server needs --interrupt_requests false to serve "
                                  "several questions at once); ask again")
        tail = stops.flush()
        if tail:
            yield tail
