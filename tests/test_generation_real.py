"""The real generator backends on a tiny grounded prompt (marked: loads the real model).

Asserts key facts only, never exact generated text. Prompts and answers are kept short because CI
runs these; the transformers case includes the one-time GGUF -> bf16 conversion on a fresh machine.
"""

from __future__ import annotations

import pytest

from rag.generators import Generator, load_generator
from rag.settings import Settings

pytestmark = pytest.mark.real_model

MESSAGES = [
    {"role": "system", "content": "Answer in one sentence using only the passage."},
    {
        "role": "user",
        "content": "Passage: The Coalition Support Fund (CSF) reimbursed Pakistan's army.\n\nQuestion: What is CSF?",
    },
]


@pytest.fixture(scope="module", params=["llama-cpp", "transformers"])
def generator(request) -> Generator:
    return load_generator(Settings.from_env().with_overrides(backend=request.param))


def answer(generator: Generator, **options) -> str:
    return "".join(generator.stream(MESSAGES, **options))


def test_answer_is_grounded_in_the_passage(generator):
    assert isinstance(generator, Generator)
    text = answer(generator, max_tokens=16)
    assert "coalition support fund" in text.lower()


def test_max_tokens_is_respected(generator):
    text = answer(generator, max_tokens=4)
    assert text and generator.count_tokens(text) <= 4


def test_a_stop_string_ends_the_answer_before_it(generator):
    text = answer(generator, max_tokens=16, stop=["Fund"])
    assert "Coalition Support" in text  # it got there...
    assert "Fund" not in text  # ...and stopped right before the stop string


def test_closing_early_leaves_the_generator_usable(generator):
    stream = generator.stream(MESSAGES, max_tokens=16)
    first = next(stream)
    stream.close()  # what `break` or Ctrl-C in the consumer does
    assert first
    assert load_generator(Settings.from_env().with_overrides(backend=generator.backend)) is generator  # loaded once
    assert "coalition" in answer(generator, max_tokens=6).lower()


def _fresh_llama(state_dir):
    from rag.generators.llama_cpp import LlamaCppGenerator
    from rag.generators.model_files import resolve_model

    settings = Settings.from_env()
    return LlamaCppGenerator(resolve_model(settings), threads=settings.threads, context_tokens=settings.context_tokens,
                             state_dir=state_dir)


def test_a_saved_prefix_is_loaded_by_the_next_process_and_answers_the_same(tmp_path):
    first = _fresh_llama(tmp_path)
    first.warm_up(MESSAGES[:1])
    [saved] = tmp_path.glob("prefix-*.bin")
    expected = answer(first, max_tokens=16)
    del first

    second = _fresh_llama(tmp_path)  # a new process would start just like this: empty cache
    evaluations = []
    evaluate = second._llm.generate
    second._llm.generate = lambda *args, **kwargs: (evaluations.append(args), evaluate(*args, **kwargs))[1]
    second.warm_up(MESSAGES[:1])
    prefix = second.chat_tokens(MESSAGES[:1], add_generation_prompt=False)
    assert evaluations == [] and second._llm.n_tokens == len(prefix)  # loaded, not evaluated
    assert answer(second, max_tokens=16) == expected
    assert list(tmp_path.glob("prefix-*.bin")) == [saved] and not list(tmp_path.glob(".*tmp"))


def test_a_damaged_saved_prefix_is_replaced_not_trusted(tmp_path):
    first = _fresh_llama(tmp_path)
    first.warm_up(MESSAGES[:1])
    expected = answer(first, max_tokens=16)
    [saved] = tmp_path.glob("prefix-*.bin")
    size = saved.stat().st_size
    saved.write_bytes(saved.read_bytes()[: size // 3])  # cut short, as by a full disk
    del first

    second = _fresh_llama(tmp_path)
    second.warm_up(MESSAGES[:1])
    assert answer(second, max_tokens=16) == expected
    assert saved.stat().st_size == size  # written again, whole


def test_the_answer_does_not_depend_on_the_thread_count():
    """Threads follow the load (threads_free), so they must not change the text: with flash
    attention on, 2 decode threads wrote a different answer than 1 on this very prompt."""
    import sys
    from pathlib import Path

    from rag.generators.llama_cpp import LlamaCppGenerator
    from rag.generators.model_files import resolve_model

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        from generators import messages  # the bot's own prompt over three seed passages
    finally:
        sys.path.pop(0)
    settings = Settings.from_env()
    prompt = messages(settings.seeds, question=0, order=(0, 1, 2))
    texts = set()
    for threads in ((1, 1), (2, 2)):
        generator = LlamaCppGenerator(resolve_model(settings), threads=2, context_tokens=settings.context_tokens,
                                      fixed_threads=threads)
        texts.add("".join(generator.stream(prompt, max_tokens=40)))
        del generator
    assert len(texts) == 1, texts
