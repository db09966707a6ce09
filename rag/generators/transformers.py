"""The transformers backend of `Generator` (see base.py): a bf16 folder, converted once
from the GGUF by hf_conversion.py. torch and transformers are imported inside the methods.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import GenerationError, ModelCorruptError, ModelError
from ..settings import Settings, set_offline
from .base import Busy, StopFilter, check_context, check_max_tokens
from .hf_conversion import hf_folder_for
from .model_files import resolve_model


def cache_key(settings: Settings) -> tuple:
    return (str(resolve_model(settings).resolve()), settings.threads, settings.context_tokens)


def load(settings: Settings) -> TransformersGenerator:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelError(f"the transformers backend needs torch and transformers ({exc}); run `pip install -e .`") from exc
    path = resolve_model(settings).resolve()
    folder = path if path.is_dir() else hf_folder_for(path, settings)
    return TransformersGenerator(folder, threads=settings.threads, context_tokens=settings.context_tokens)


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
        self._busy = Busy()

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
        check_max_tokens(max_tokens)
        tokens = self.chat_tokens(messages, add_generation_prompt=True)
        check_context(len(tokens), max_tokens, self.context_tokens)
        return self._stream(tokens, max_tokens, stop)

    def _stream(self, tokens: list[int], max_tokens: int, stop: Sequence[str]) -> Iterator[str]:
        import torch

        self._busy.acquire()
        stops = StopFilter(stop)
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
