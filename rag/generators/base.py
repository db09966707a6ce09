"""The generation stage: chat messages in, a stream of text pieces out.

`Generator` is the narrow interface the bot talks to. Each backend is one module in this package,
named after the backend ("llama-cpp" -> llama_cpp.py), defining `load(settings)` and
`cache_key(settings)`; `load_generator` finds it by that name, so adding a backend is adding a file
(and listing its name in settings.BACKENDS):

- `llama_cpp.py`: llama.cpp on the packaged Q4_K_M GGUF. The default: fastest on a CPU.
- `transformers.py`: transformers on a bf16 copy of the same model, converted once.
- `openai.py`: any OpenAI-compatible server (llama.cpp's server, vLLM, Ollama) over HTTP.

All decode greedily (reproducible answers) and apply the same stop rules (`StopFilter`). The local
ones format messages with the model's own chat template and keep the KV cache of the previous
prompt so that a shared prefix (our prompts always start with the same system message) is not
evaluated again. `load_generator` loads a model once per process and hands out the same instance.

Heavy libraries (llama_cpp, torch, transformers, httpx) are imported inside the functions that need them.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from ..errors import ConfigError, GenerationError
from ..settings import Settings

__all__ = ["Generator", "load_generator"]


@runtime_checkable
class Generator(Protocol):
    backend: str  # "llama-cpp", "transformers", "openai"
    model_name: str  # human-readable, reported in Answer.timings

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, stop: Sequence[str] = ()) -> Iterator[str]:
        """Yield the reply to `messages` piece by piece; stops at max_tokens, end of turn or a stop string."""
        ...

    def count_tokens(self, text: str) -> int:
        """How many model tokens `text` takes (used to fit prompts into the context)."""
        ...

    # Optional: `warm_up(messages)` evaluates the chat prefix of `messages` ahead of the first
    # question. Callers check with `hasattr(generator, "warm_up")`.
    # Optional: `concurrent = True` when several streams may run at once (a server that schedules
    # them itself); without it the bot serialises calls behind its model lock (one KV cache).
    # Optional: the iterator `stream` returns may carry `usage` ({"prompt_tokens",
    # "completion_tokens"} as the backend counted them, once it is exhausted), which the bot then
    # reports in Answer.timings instead of counting again. On the iterator, not the generator:
    # concurrent streams each have their own.


# --- shared by the backends --------------------------------------------------------------------------


class StopFilter:
    """Holds back text that might be the start of a stop string, and cuts at the first stop string.

    Tokens do not align with stop strings ("[STOP" + "]"), so the tail that could still grow into
    one is kept until the next piece decides it.
    """

    def __init__(self, stop: Iterable[str]):
        self.stop = [s for s in stop if s]
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Text that is safe to emit now; sets `stopped` when a stop string appeared."""
        self.pending += text
        if not self.stop:
            out, self.pending = self.pending, ""
            return out
        cut = min((i for i in (self.pending.find(s) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            out, self.pending, self.stopped = self.pending[:cut], "", True
            return out
        keep = 0  # longest suffix of pending that is a proper prefix of some stop string
        for s in self.stop:
            for length in range(min(len(s) - 1, len(self.pending)), keep, -1):
                if self.pending.endswith(s[:length]):
                    keep = length
                    break
        out = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(out) :]
        return out

    def flush(self) -> str:
        """At the natural end of generation, whatever was held back is ordinary text."""
        out, self.pending = ("" if self.stopped else self.pending), ""
        return out


class Busy:
    """One stream at a time per model (the KV cache is shared state), with a clear error instead
    of a deadlock when the same thread starts a second stream before finishing the first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None

    def acquire(self) -> None:
        if self._owner == threading.get_ident():
            raise GenerationError(
                "a previous answer from this generator is still streaming; read it to the end or close() it first"
            )
        self._lock.acquire()
        self._owner = threading.get_ident()

    def release(self) -> None:
        self._owner = None
        self._lock.release()


def check_max_tokens(max_tokens: int) -> None:
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise GenerationError(f"max_tokens must be a positive whole number, got {max_tokens!r}")


def check_context(prompt_tokens: int, max_tokens: int, context_tokens: int) -> None:
    if prompt_tokens + max_tokens > context_tokens:
        raise GenerationError(
            f"the prompt has {prompt_tokens} tokens and the answer may take {max_tokens}, more than the context of "
            f"{context_tokens}; use fewer passages (PAKUS_K) or a larger PAKUS_CONTEXT_TOKENS"
        )


def render_chat_template(template: str, messages: list[dict[str, str]], *, add_generation_prompt: bool, **special: str) -> str:
    """Render a model's Jinja chat template the way transformers and llama.cpp do."""
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt, **special)
    except TemplateError as exc:
        raise GenerationError(f"the model's chat template rejected the messages: {exc}") from exc


# --- loading, once per process ---------------------------------------------------------------

_loaded: dict[tuple, Generator] = {}
_loading = threading.Lock()


def backend_module(backend: str):
    """The module implementing `backend`: this package's `<backend with _ for ->`.py."""
    name = f"{__package__}.{backend.replace('-', '_')}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise ConfigError(f"no generator module for backend {backend!r} (expected {name})") from None


def load_generator(settings: Settings) -> Generator:
    """The generator for `settings`, loaded on first use and then reused for the whole process.

    A backend module's `cache_key(settings)` says what identifies its generator (model file,
    threads, server URL...); `load(settings)` builds one.
    """
    module = backend_module(settings.backend)
    key: tuple[Hashable, ...] = (settings.backend, *module.cache_key(settings))
    with _loading:  # two threads asking at once must not load the model twice
        if key not in _loaded:
            _loaded[key] = module.load(settings)
        return _loaded[key]
