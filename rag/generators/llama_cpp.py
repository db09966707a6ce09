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

    def __init__(self, model_path: Path, *, threads: int, context_tokens: int, state_dir: Path | None = None):
        import llama_cpp

        self.model_path = Path(model_path)
        self.state_dir = state_dir  # where warm_up keeps the evaluated prefix between processes
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
        self._busy = Busy()

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
                    "n_ubatch": LLAMA_N_UBATCH, "flash_attn": True, "tokens": tokens}
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
