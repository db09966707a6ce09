"""The llama.cpp backend of `Generator` (see base.py): llama-cpp-python on a GGUF file.

llama_cpp is imported inside the constructor, so importing this module costs nothing.
"""

from __future__ import annotations

import codecs
import ctypes
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import GenerationError, ModelCorruptError, ModelError
from ..settings import Settings
from .base import Busy, StopFilter, check_context, check_max_tokens, render_chat_template
from .model_files import resolve_model


# llama.cpp settings, measured on the 2-core target machine (AMD EPYC, AVX-512 VNNI/BF16) with a
# 400-token prompt, best of several runs because the machine is shared:
# - n_ubatch 512 (one pass for a whole prompt): 512 and 256 give the same prefill speed per core,
#   128 is 5% slower, 32 is 18% slower. n_batch must be >= n_ubatch.
# - flash attention off: its decode step combines partial results in an order that depends on
#   the thread count, so 2 decode threads wrote a different answer than 1 (1 of 4 prompts);
#   without it 1/1, 1/2, 2/1 and 2/2 threads give the same text, and threads can follow the
#   load (`threads_free`) without changing answers. Speed was the same either way at these
#   lengths (about 160 tokens/s); it only kept the attention scratch small. A q8_0 KV cache is
#   15% slower: kept at f16.
# - use_mmap: loading without mmap is 4% faster at prefill but adds 2 s to every start; mmap.
# - threads: see `thread_counts` and `threads_free`.
LLAMA_N_BATCH = 512
LLAMA_N_UBATCH = 512
LLAMA_FLASH_ATTN = False
RECHECK_TOKENS = 16  # while decoding, look at the other processes again every this many tokens


def thread_counts(threads: int) -> tuple[int, int]:
    """(prompt threads, decode threads) on an otherwise idle machine: all of `threads` for both.

    `threads` is PAKUS_THREADS, default every core. Measured with benchmarks/generators.py
    --threads, raw llama-cpp-python, 2-core AMD EPYC: idle, 2 threads decode at 17.5 tokens/s and
    1 thread at 11 (the 1 decode thread chosen on an earlier machine left pakus at 9.7); prefill
    doubles with the second thread. But the threads of one step wait for each other, so while
    other processes keep a core busy, 2 threads fall far behind 1 (load average 7: decode 1.8
    tokens/s with 2 threads, 14.6 with 1; prefill 19 against 35): see `threads_free`.
    """
    return threads, threads


def busy_elsewhere() -> int | None:
    """Threads of other processes running or waiting for a core right now; None where unknown.

    Linux: the running count in /proc/loadavg, less this process's own running threads.
    """
    try:
        with open("/proc/loadavg") as handle:
            running = int(handle.read().split()[3].split("/")[0])
        own = 0
        for task in os.scandir("/proc/self/task"):
            try:
                with open(os.path.join(task.path, "stat")) as handle:
                    stat = handle.read()
            except OSError:
                continue  # the thread ended meanwhile
            own += stat[stat.rindex(")") + 2] == "R"
        return max(0, running - own)
    except (OSError, ValueError, IndexError):
        return None


def threads_free(threads: int) -> int:
    """Threads to use now: up to `threads`, one fewer for each thread of another process that
    wants a core (at least 1), because a step of llama.cpp is as slow as its slowest thread."""
    busy = busy_elsewhere()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or threads)
    if busy is None:
        return threads
    return max(1, min(threads, cores - busy))


def cache_key(settings: Settings) -> tuple:
    return (str(resolve_model(settings).resolve()), settings.threads, settings.context_tokens)


def load(settings: Settings) -> LlamaCppGenerator:
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        raise ModelError(
            f"llama-cpp-python is not installed ({exc}); run `pip install -e .` (it compiles, about 6 minutes)"
        ) from exc
    return LlamaCppGenerator(resolve_model(settings).resolve(), threads=settings.threads,
                             context_tokens=settings.context_tokens, state_dir=settings.cache_dir / "llama-state")


class LlamaCppGenerator:
    """llama-cpp-python on a GGUF file.

    The chat prompt is rendered and tokenized here and fed to `Llama.generate`, which keeps the
    tokens of the previous call and evaluates only what follows the longest common prefix.
    (`create_chat_completion` would do the same, but rendering ourselves lets `warm_up` evaluate
    exactly the prefix the next prompt starts with.)
    """

    backend = "llama-cpp"

    def __init__(self, model_path: Path, *, threads: int, context_tokens: int, state_dir: Path | None = None,
                 fixed_threads: tuple[int, int] | None = None):
        """`threads`: the most to use (fewer while other processes keep cores busy); `fixed_threads`
        (prompt, decode) turns that off, for measurements."""
        import llama_cpp

        self.model_path = Path(model_path)
        self.state_dir = state_dir  # where warm_up keeps the evaluated prefix between processes
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=context_tokens,
                n_threads=(fixed_threads or thread_counts(threads))[1],
                n_threads_batch=(fixed_threads or thread_counts(threads))[0],
                n_batch=LLAMA_N_BATCH,
                n_ubatch=LLAMA_N_UBATCH,
                flash_attn=LLAMA_FLASH_ATTN,
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
        self._busy = Busy()
        self.threads = threads
        self._fixed = fixed_threads is not None
        self.threads_now = fixed_threads or thread_counts(threads)  # (prompt, decode) as last set

    def _fit_threads(self) -> None:
        """As many threads as the other processes leave cores for (see `threads_free`); checked
        before each prompt and every RECHECK_TOKENS tokens, at the cost of reading /proc."""
        if self._fixed:
            return
        free = threads_free(self.threads)
        if (free, free) != self.threads_now:
            self._llm._ctx.set_n_threads(free, free)
            self.threads_now = (free, free)

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def chat_tokens(self, messages: list[dict[str, str]], *, add_generation_prompt: bool = True) -> list[int]:
        """The token ids the model sees for `messages`, chat template included."""
        prompt = render_chat_template(
            self._template, messages, add_generation_prompt=add_generation_prompt, bos_token=self._bos, eos_token=self._eos
        )
        # The template already writes any BOS it wants; special=True turns <|im_start|> into one token.
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def warm_up(self, messages: list[dict[str, str]]) -> None:
        """Evaluate the chat prefix of `messages` (no generation prompt) into the KV cache.

        Pass what every prompt starts with (the system message, or a prompt built from it): the
        first real question then only evaluates what follows the common prefix. With a
        `state_dir`, the evaluated prefix is saved there and later processes load it (3 ms for the
        274-token system prefix, measured) instead of evaluating it again (1.9 s on 2 cores).
        """
        tokens = self.chat_tokens(messages, add_generation_prompt=False)
        saved = self._prefix_file(tokens)
        self._busy.acquire()
        try:
            if self._restore_prefix(tokens, saved):
                return
            self._fit_threads()
            # generate() evaluates the prompt (reusing what is cached) before sampling; taking one
            # sampled token and closing leaves exactly `tokens` in the cache.
            steps = self._llm.generate(tokens, temp=0.0, repeat_penalty=1.0)
            try:
                next(steps)
            finally:
                steps.close()
            self._save_prefix(tokens, saved)
        finally:
            self._busy.release()

    def _prefix_file(self, tokens: list[int]) -> Path | None:
        """The state file for `tokens` under this model, build and context: any change, a new name."""
        if self.state_dir is None:
            return None
        import llama_cpp

        stat = self.model_path.stat()
        identity = {"llama_cpp": llama_cpp.__version__, "model": str(self.model_path.resolve()), "size": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns, "n_ctx": self._llm.n_ctx(), "n_batch": LLAMA_N_BATCH,
                    "n_ubatch": LLAMA_N_UBATCH, "flash_attn": LLAMA_FLASH_ATTN, "tokens": tokens}
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
        return self.state_dir / f"prefix-{digest}.bin"

    def _restore_prefix(self, tokens: list[int], path: Path | None) -> bool:
        """Load the prefix saved at `path` into the KV cache; False (and an empty cache) when there is none."""
        import llama_cpp

        if path is None or not path.is_file() or self._llm.n_tokens:
            return False  # nothing saved, or the cache already holds work of this process
        loaded = (llama_cpp.llama_token * len(tokens))()
        count = ctypes.c_size_t(0)
        ok = llama_cpp.llama_state_load_file(self._llm._ctx.ctx, str(path).encode(), loaded, len(tokens), ctypes.byref(count))
        if not ok or list(loaded[: count.value]) != tokens:
            self._llm.reset()  # the next evaluation starts from an empty cache
            path.unlink(missing_ok=True)  # unreadable: the next warm-up writes a good one
            return False
        # Tell llama-cpp-python what the cache now holds, so generate() reuses it as a prefix, and
        # that no logits go with it (as its own load_state does): a prompt equal to the prefix
        # then evaluates its last token again instead of sampling from stale logits.
        self._llm.input_ids[: len(tokens)] = tokens
        self._llm.n_tokens = len(tokens)
        self._llm._requires_eval = True
        return True

    def _save_prefix(self, tokens: list[int], path: Path | None) -> None:
        """Write the KV cache of `tokens` (all of it, nothing else evaluated yet) to `path` for later
        processes. A cache: failures are ignored. Written under a temporary name and renamed, so a
        reader never sees half a file; states of other prefixes (an older prompt) are removed."""
        import llama_cpp

        if path is None or self._llm.n_tokens != len(tokens):
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            saved = (llama_cpp.llama_token * len(tokens))(*tokens)
            if llama_cpp.llama_state_save_file(self._llm._ctx.ctx, str(tmp).encode(), saved, len(tokens)):
                os.replace(tmp, path)
                for old in path.parent.glob("prefix-*.bin"):
                    if old != path:
                        old.unlink(missing_ok=True)
        except OSError:
            pass
        finally:
            tmp.unlink(missing_ok=True)

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, stop: Sequence[str] = ()) -> Iterator[str]:
        check_max_tokens(max_tokens)
        tokens = self.chat_tokens(messages, add_generation_prompt=True)
        check_context(len(tokens), max_tokens, self._llm.n_ctx())
        return self._stream(tokens, max_tokens, stop)

    def _stream(self, tokens: list[int], max_tokens: int, stop: Sequence[str]) -> Iterator[str]:
        # A separate generator so that argument errors above are raised at call time, not on first next().
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # tokens can split a character
        stops = StopFilter(stop)
        self._busy.acquire()
        self._fit_threads()
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
                if produced % RECHECK_TOKENS == 0:
                    self._fit_threads()
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
