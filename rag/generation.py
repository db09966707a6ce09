"""The generation stage: chat messages in, a stream of text pieces out.

`Generator` is the narrow interface the bot talks to; two real backends implement it:

- `LlamaCppGenerator`: llama.cpp on the packaged Q4_K_M GGUF. The default: fastest on a CPU.
- `TransformersGenerator`: transformers on a bf16 copy of the same model, converted once.

Both decode greedily (reproducible answers), format messages with the model's own chat template,
and keep the KV cache of the previous prompt so that a shared prefix (our prompts always start
with the same system message) is not evaluated again. `load_generator` loads a model once per
process and hands out the same instance afterwards.

Heavy libraries (llama_cpp, torch, transformers) are imported inside the functions that need them.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from .errors import GenerationError, ModelCorruptError, ModelError
from .model_files import hf_folder_for, resolve_model
from .settings import Settings, set_offline

__all__ = [
    "Generator",
    "LlamaCppGenerator",
    "TransformersGenerator",
    "load_generator",
]


@runtime_checkable
class Generator(Protocol):
    backend: str  # "llama-cpp" or "transformers"
    model_name: str  # human-readable, reported in Answer.timings

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, stop: Sequence[str] = ()) -> Iterator[str]:
        """Yield the reply to `messages` piece by piece; stops at max_tokens, end of turn or a stop string."""
        ...

    def count_tokens(self, text: str) -> int:
        """How many model tokens `text` takes (used to fit prompts into the context)."""
        ...

    # Optional: `warm_up(messages)` evaluates the chat prefix of `messages` ahead of the first
    # question. Callers check with `hasattr(generator, "warm_up")`.


# --- shared helpers --------------------------------------------------------------------------


class _StopFilter:
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


class _Busy:
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


def _check_max_tokens(max_tokens: int) -> None:
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise GenerationError(f"max_tokens must be a positive whole number, got {max_tokens!r}")


def _check_context(prompt_tokens: int, max_tokens: int, context_tokens: int) -> None:
    if prompt_tokens + max_tokens > context_tokens:
        raise GenerationError(
            f"the prompt has {prompt_tokens} tokens and the answer may take {max_tokens}, more than the context of "
            f"{context_tokens}; use fewer passages (PAKUS_K) or a larger PAKUS_CONTEXT_TOKENS"
        )


def _render_chat_template(template: str, messages: list[dict[str, str]], *, add_generation_prompt: bool, **special: str) -> str:
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


# --- llama.cpp -------------------------------------------------------------------------------

# llama.cpp settings, measured on the 2-core target machine (AMD EPYC, AVX-512 VNNI/BF16) with a
# 400-token prompt, best of several runs because the machine is shared:
# - n_ubatch 512 (one pass for a whole prompt): 512 and 256 give the same prefill speed per core,
#   128 is 5% slower, 32 is 18% slower. n_batch must be >= n_ubatch.
# - flash attention: the same speed at these lengths (about 160 tokens/s either way); it keeps the
#   attention scratch small. A q8_0 KV cache is 15% slower: kept at f16.
# - use_mmap: loading without mmap is 4% faster at prefill but adds 2 s to every start; mmap.
# - threads: prefill (compute-bound) on all cores: 160 tokens/s with 2 threads vs 80 with 1.
#   Decode uses half the cores (llama-cpp-python's own default): 2 decode threads reach 33
#   tokens/s on an idle machine, 1 thread 22, but when another process holds a core the two
#   threads wait on each other and decode falls to 1-8 tokens/s, while 1 thread keeps 11-22.
LLAMA_N_BATCH = 512
LLAMA_N_UBATCH = 512


def _decode_threads(threads: int) -> int:
    """Threads for generating tokens one at a time (see the measurements above)."""
    return max(1, threads // 2)


class LlamaCppGenerator:
    """llama-cpp-python on a GGUF file.

    The chat prompt is rendered and tokenized here and fed to `Llama.generate`, which keeps the
    tokens of the previous call and evaluates only what follows the longest common prefix.
    (`create_chat_completion` would do the same, but rendering ourselves lets `warm_up` evaluate
    exactly the prefix the next prompt starts with.)
    """

    backend = "llama-cpp"

    def __init__(self, model_path: Path, *, threads: int, context_tokens: int):
        import llama_cpp

        self.model_path = Path(model_path)
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=context_tokens,
                n_threads=_decode_threads(threads),
                n_threads_batch=threads,
                n_batch=LLAMA_N_BATCH,
                n_ubatch=LLAMA_N_UBATCH,
                flash_attn=True,
                use_mmap=True,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelCorruptError(
                f"llama.cpp cannot load {self.model_path} ({exc}); if it is the packaged model, delete it and run again"
            ) from exc
        metadata = self._llm.metadata
        self._template = metadata.get("tokenizer.chat_template")
        if not self._template:
            raise ModelError(f"{self.model_path.name} has no chat template in its metadata; use an instruction-tuned GGUF")
        vocab = self._llm._model.vocab
        self._bos = self._piece(self._llm.token_bos())
        self._eos = self._piece(self._llm.token_eos())
        self._is_eog = lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))
        name = metadata.get("general.name") or self.model_path.stem
        self.model_name = f"{name} ({self.model_path.name})"
        self._busy = _Busy()

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def chat_tokens(self, messages: list[dict[str, str]], *, add_generation_prompt: bool = True) -> list[int]:
        """The token ids the model sees for `messages`, chat template included."""
        prompt = _render_chat_template(
            self._template, messages, add_generation_prompt=add_generation_prompt, bos_token=self._bos, eos_token=self._eos
        )
        # The template already writes any BOS it wants; special=True turns <|im_start|> into one token.
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def warm_up(self, messages: list[dict[str, str]]) -> None:
        """Evaluate the chat prefix of `messages` (no generation prompt) into the KV cache.

        Pass what every prompt starts with (the system message, or a prompt built from it): the
        first real question then only evaluates what follows the common prefix.
        """
        tokens = self.chat_tokens(messages, add_generation_prompt=False)
        self._busy.acquire()
        try:
            # generate() evaluates the prompt (reusing what is cached) before sampling; taking one
            # sampled token and closing leaves exactly `tokens` in the cache.
            steps = self._llm.generate(tokens, temp=0.0, repeat_penalty=1.0)
            try:
                next(steps)
            finally:
                steps.close()
        finally:
            self._busy.release()

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, stop: Sequence[str] = ()) -> Iterator[str]:
        _check_max_tokens(max_tokens)
        tokens = self.chat_tokens(messages, add_generation_prompt=True)
        _check_context(len(tokens), max_tokens, self._llm.n_ctx())
        return self._stream(tokens, max_tokens, stop)

    def _stream(self, tokens: list[int], max_tokens: int, stop: Sequence[str]) -> Iterator[str]:
        # A separate generator so that argument errors above are raised at call time, not on first next().
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # tokens can split a character
        stops = _StopFilter(stop)
        self._busy.acquire()
        # temp=0 is greedy; repeat_penalty=1 turns the default penalty off (it would change answers).
        steps = self._llm.generate(tokens, temp=0.0, repeat_penalty=1.0)
        try:
            for produced, token in enumerate(steps, start=1):
                if self._is_eog(token):
                    break
                text = stops.feed(decoder.decode(self._llm.detokenize([token])))
                if text:
                    yield text
                if stops.stopped or produced >= max_tokens:
                    break
            tail = stops.feed(decoder.decode(b"", final=True)) + stops.flush()
            if tail:
                yield tail
        except (RuntimeError, ValueError) as exc:
            raise GenerationError(f"llama.cpp failed while generating: {exc}") from exc
        finally:
            # Runs on normal end, on error, and when the consumer closes us early (break, Ctrl-C):
            # the KV cache keeps whatever was evaluated, and the next call trims it to the common prefix.
            steps.close()
            self._busy.release()


# --- transformers ----------------------------------------------------------------------------


class TransformersGenerator:
    """transformers on a bf16 folder, with a plain greedy loop over a reusable KV cache.

    A manual loop (rather than `generate` + `TextIteratorStreamer` in a thread) keeps early
    closing trivial and lets the cache of the previous prompt be cropped and reused.
    """

    backend = "transformers"

    def __init__(self, folder: Path, *, threads: int, context_tokens: int):
        set_offline()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        self.folder = Path(folder)
        self.context_tokens = context_tokens
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.folder)
            self._model = AutoModelForCausalLM.from_pretrained(self.folder, dtype=torch.bfloat16)
        except (OSError, ValueError) as exc:
            raise ModelCorruptError(f"transformers cannot load {self.folder} ({exc}); delete the folder and run again") from exc
        self._model.eval()
        if not self._tokenizer.chat_template:
            raise ModelError(f"{self.folder} has no chat template; use an instruction-tuned model")
        # End of turn: what the generation config and tokenizer call end-of-sequence, plus the
        # end-of-text token, which llama.cpp also treats as end of generation.
        eos = self._model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        vocab = self._tokenizer.get_vocab()
        self._eos = {t for t in [*eos, self._tokenizer.eos_token_id, vocab.get("<|endoftext|>")] if t is not None}
        self.model_name = f"{self.folder.name} (transformers)"
        self._cache = None  # DynamicCache of the tokens in self._cached
        self._cached: list[int] = []
        self._busy = _Busy()

    def chat_tokens(self, messages: list[dict[str, str]], *, add_generation_prompt: bool = True) -> list[int]:
        """The token ids the model sees for `messages`, chat template included."""
        text = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
        return self._tokenizer.encode(text, add_special_tokens=False)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def _prefill(self, tokens: list[int]):
        """Logits for the last token of `tokens`, evaluating only what the cache does not hold."""
        from transformers import DynamicCache

        common = 0
        for a, b in zip(self._cached, tokens):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # at least one token must run to get fresh logits
        if self._cache is None or common == 0:
            self._cache, self._cached = DynamicCache(config=self._model.config), []
        elif len(self._cached) > common:
            self._cache.crop(-(len(self._cached) - common))  # transformers 5: a negative count to drop
            self._cached = self._cached[:common]
        return self._forward(tokens[len(self._cached) :])

    def _forward(self, new: list[int]):
        """Run `new` through the model on top of the cache; logits of the last position."""
        import torch

        try:
            with torch.inference_mode():
                out = self._model(input_ids=torch.tensor([new]), past_key_values=self._cache, use_cache=True)
        except BaseException:
            # Interrupted (Ctrl-C) or failed half-way through the layers: the cache no longer
            # matches self._cached, so start from scratch next time.
            self._cache, self._cached = None, []
            raise
        self._cached.extend(new)
        return out.logits[0, -1]

    def warm_up(self, messages: list[dict[str, str]]) -> None:
        """Evaluate the chat prefix of `messages` so the first question reuses it."""
        tokens = self.chat_tokens(messages, add_generation_prompt=False)
        self._busy.acquire()
        try:
            self._prefill(tokens)
        finally:
            self._busy.release()

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, stop: Sequence[str] = ()) -> Iterator[str]:
        _check_max_tokens(max_tokens)
        tokens = self.chat_tokens(messages, add_generation_prompt=True)
        _check_context(len(tokens), max_tokens, self.context_tokens)
        return self._stream(tokens, max_tokens, stop)

    def _stream(self, tokens: list[int], max_tokens: int, stop: Sequence[str]) -> Iterator[str]:
        import torch

        self._busy.acquire()
        stops = _StopFilter(stop)
        generated: list[int] = []
        emitted = ""  # decoded text so far; pieces are diffs of the whole decode (handles merges)
        try:
            try:
                logits = self._prefill(tokens)
                while True:
                    token = int(torch.argmax(logits))
                    if token in self._eos:
                        break
                    generated.append(token)
                    text = self._tokenizer.decode(generated, skip_special_tokens=True)
                    # A trailing U+FFFD means a character is split across tokens: wait for the rest.
                    if not text.endswith("\ufffd"):
                        piece = stops.feed(text[len(emitted) :])
                        emitted = text
                        if piece:
                            yield piece
                    if stops.stopped or len(generated) >= max_tokens:
                        break
                    logits = self._forward([token])
            except RuntimeError as exc:
                raise GenerationError(f"transformers failed while generating: {exc}") from exc
            text = self._tokenizer.decode(generated, skip_special_tokens=True)
            tail = stops.feed(text[len(emitted) :]) + stops.flush()
            if tail:
                yield tail
        finally:
            self._busy.release()


# --- loading, once per process ---------------------------------------------------------------

_loaded: dict[tuple, Generator] = {}
_loading = threading.Lock()


def load_generator(settings: Settings) -> Generator:
    """The generator for `settings`, loaded on first use and then reused for the whole process."""
    path = resolve_model(settings).resolve()
    key = (settings.backend, str(path), settings.threads, settings.context_tokens)
    with _loading:  # two threads asking at once must not load the model twice
        if key not in _loaded:
            _loaded[key] = _load(settings, path)
        return _loaded[key]


def _load(settings: Settings, path: Path) -> Generator:
    if settings.backend == "llama-cpp":
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            raise ModelError(
                f"llama-cpp-python is not installed ({exc}); run `pip install -e .` (it compiles, about 6 minutes)"
            ) from exc
        return LlamaCppGenerator(path, threads=settings.threads, context_tokens=settings.context_tokens)
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelError(f"the transformers backend needs torch and transformers ({exc}); run `pip install -e .`") from exc
    folder = path if path.is_dir() else hf_folder_for(path, settings)
    return TransformersGenerator(folder, threads=settings.threads, context_tokens=settings.context_tokens)
