"""The bot: the only module that knows the order of the stages.

question (+ history) -> stand-alone question -> retrieval -> enough evidence, and nothing named
that no document mentions? (else decline without calling the model) -> numbered passages ->
prompt -> streamed tokens -> citations parsed and checked (a model decline is retried with each
best passage alone, then answered by quoting a sentence that nearly restates the question, if one
does, or one the model points at; last, the text that follows the passages is read) -> `Answer`.
The CLI, the Python API and the UI all go through `Bot` and `Chat`.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from functools import cached_property

from .citations import CheckedAnswer, check_answer, strip_markers
from .compound import answer_by_parts, complete_parts
from .collections import answer_k
from .declines import model_declined
from .quoting import pointed_answer, quote_answer
from .embedding import Embedder, MiniLMEmbedder
from .errors import PakusError
from .generators import Generator, load_generator
from .lexical import tokenize
from .markers import first_sentence, markers_only
from .passages import MAX_PASSAGE_CHARS, passages_below, select_passages
from .prompts import NOT_FOUND, REFUSAL, answer_messages, pointing_messages, rewrite_messages
from .relevance import POINTING_BACK, other_language, rewrite_keeps_question, unanswered_parts
from .opened_collection import Documents, open_for_queries
from .retrieval import Retriever, search_parts, search_focus, validate_k, validate_question
from .schema import Answer, Hit
from .settings import Settings

# Evidence needed before the model is asked at all. Calibrated on tests/data/seeds_qa.jsonl with
# 64-token chunks (see README, "Abstention"): the weakest answerable question's best passage had
# cosine 0.385 with BM25 8.9 (d14), or cosine 0.54 with BM25 1.7 (d01 "What is CSF?"); the
# off-topic "recipe for chicken biryani" reached cosine 0.18 and no BM25 match. A question is
# declined outright only when both signals are below these floors, well clear of every answerable one.
MIN_DENSE_SCORE = 0.30
MIN_LEXICAL_SCORE = 1.0

# Words that make a follow-up depend on the conversation ("How much did it account for?").
_NEEDS_CONTEXT = re.compile(
    rf"\b({POINTING_BACK}|it's|theirs|there|the same|such|former|latter)\b"
    r"|^(and|but|also|so|what about|how about|then)\b",
    re.I,
)
# A reply's start that is markers, or the start of one, and nothing else yet: "[", "[1", "[1] ".
_MARKERS_SO_FAR = re.compile(r"[\s\[\]\d,;.]*")
# What every answer prompt starts with: the instructions and the opening of the user's turn.
_PROMPT_PREFIX = answer_messages("", [])
# A declined answer is asked again with each of the first passages alone, in rank order.
_PASSAGES_ALONE = 2
_ANSWER_TOKENS = 120  # one or two sentences with markers; a cap keeps a rambling model fast


def has_evidence(hits: list[Hit]) -> bool:
    best_dense = max((h.dense_score or 0.0 for h in hits), default=0.0)
    best_lexical = max((h.lexical_score or 0.0 for h in hits), default=0.0)
    return best_dense >= MIN_DENSE_SCORE or best_lexical >= MIN_LEXICAL_SCORE


def needs_context(question: str) -> bool:
    return bool(_NEEDS_CONTEXT.search(question)) or len(tokenize(question)) < 2


class Bot:
    """Loads the index, the embedder and the model on first use, once, and answers questions."""

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None, generator: Generator | None = None):
        self.settings = settings or Settings.from_env()
        self._embedder = embedder
        self._generator = generator
        self._generator_warm = False  # the fixed prompt prefix is evaluated on first use
        self._model_lock = threading.Lock()  # one generation at a time: the model has one KV cache
        self._load_lock = threading.RLock()  # two threads asking first at once must not load twice

    def share_models_with(self, other: Bot) -> None:
        """Use `other`'s embedder and language model (and its lock: one model, one KV cache), so
        bots of several collections in one process load the models once."""
        self.__dict__["embedder"] = other.embedder
        with other._load_lock:
            self._generator = other._generator
            self._generator_warm = other._generator_warm
        self._model_lock = other._model_lock

    # --- lazily loaded parts ---------------------------------------------------------------

    @cached_property
    def embedder(self) -> Embedder:
        with self._load_lock:
            return self._embedder or MiniLMEmbedder()

    @cached_property
    def collection(self):
        """The open collection (read-only: a query never changes it), checked once for staleness."""
        with self._load_lock:
            if "collection" in self.__dict__:  # another thread finished it while we waited
                return self.__dict__["collection"]
            return open_for_queries(self.settings, self.embedder)

    @cached_property
    def retriever(self) -> Retriever:
        with self._load_lock:
            if "retriever" in self.__dict__:
                return self.__dict__["retriever"]
            collection = self.collection
            return Retriever(collection.store, self.embedder, collection.catalog.metadata_by_source(),
                             candidates=self.settings.candidates, rrf_k=self.settings.rrf_k)

    @property
    def k(self) -> int:
        """Passages given to the model when a question does not say: the settings', else the collection's."""
        return answer_k(self.settings, self.collection.info)

    @cached_property
    def documents(self) -> Documents:
        """The cleaned documents, to map a quoted sentence back to its span in the source file."""
        return Documents(self.collection.catalog)

    def close(self) -> None:
        """Let go of the collection's files (the models stay loaded for another bot)."""
        if "collection" in self.__dict__:
            self.__dict__.pop("collection").close()
            self.__dict__.pop("retriever", None)
            self.__dict__.pop("documents", None)

    @property
    def generator(self) -> Generator:
        with self._load_lock:
            if self._generator is None:
                self._generator = load_generator(self.settings)
            if not self._generator_warm:
                # Every prompt starts with the same instructions. Evaluated now, or loaded from
                # the state llama.cpp saved in an earlier process (see generators/llama_cpp.py), a cold
                # `pakus ask` skips 1.4 s of prefill, and its answer is the one a warm chat gives.
                if hasattr(self._generator, "warm_up"):
                    self._generator.warm_up(_PROMPT_PREFIX)
                self._generator_warm = True
            return self._generator

    def warm_up(self) -> None:
        """Load everything and evaluate the fixed prompt prefix, so the first answer is fast."""
        self.retriever.search("warm up", 1)
        self.generator  # noqa: B018 - loading (and warming) is the point

    # --- the stages --------------------------------------------------------------------------

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        query, k = validate_question(query), validate_k(k if k is not None else 5)  # before loading anything
        return self.retriever.search(query, k)

    def rewrite(self, question: str, history: list[tuple[str, Answer]] | None) -> str | None:
        """The stand-alone form of a follow-up question, or None when it needs no rewriting."""
        question = validate_question(question)
        if not history or not needs_context(question):
            return None
        previous_question, previous_answer = history[-1]
        previous_question = previous_answer.rewritten_question or previous_question
        previous_text = previous_answer.answer if previous_answer.answered else ""
        with self._serial():
            text = "".join(self.generator.stream(rewrite_messages(question, previous_question, previous_text), max_tokens=60, stop=["\n"]))
        # The previous answer's citation markers can leak into the rewrite ("... account for? [1]"):
        # a "1" the question seems to ask about would then fail the answer's number check.
        rewritten = strip_markers(text).strip().strip('"').strip()
        # A small model sometimes answers instead of rewriting: keep only a plausible question. One
        # that gives the question back as it was has not said what its pronouns stand for ("Why is
        # it efficient ...?" after "What sorting algorithm does Python use?", py22): both are searched.
        if not rewritten or len(rewritten) > 300 or NOT_FOUND in rewritten or tokenize(rewritten) == tokenize(question) \
                or not (set(tokenize(rewritten)) & set(tokenize(question + " " + previous_question))) \
                or not rewrite_keeps_question(question, rewritten):
            rewritten = f"{previous_question} {question}"
        return rewritten

    def ask(self, question: str, *, history: list[tuple[str, Answer]] | None = None, k: int | None = None) -> Answer:
        return final_answer(self.ask_stream(question, history=history, k=k))

    def ask_stream(self, question: str, *, history: list[tuple[str, Answer]] | None = None, k: int | None = None,
                   rewritten: str | None = None) -> Iterator[str | Answer]:
        """Yield the answer text as it is generated, then the final, checked `Answer`.

        `rewritten` skips the follow-up rewriting when the caller already did it (to show it first).
        """
        question = validate_question(question)
        k = validate_k(k if k is not None else self.k)
        started = time.perf_counter()
        if rewritten is None:
            rewritten = self.rewrite(question, history)
        standalone = rewritten or question
        rewrite_done = time.perf_counter()

        # Each question of a compound one gets its own k passages (two documents often answer the
        # two parts: with k in all, the second part's passage was left out, rm16 and rm17), up to 2k.
        k = min(2 * k, k * len(search_parts(search_focus(standalone))))
        # Twice as many candidates as passages: neighbours merge, so k passages need more hits.
        hits = self.retriever.search(standalone, min(2 * k, 50))
        timings: dict = {"rewrite": round(rewrite_done - started, 3)} if rewritten else {}
        timings["retrieval"] = round(time.perf_counter() - rewrite_done, 3)

        # Declined without asking the model: nothing retrieved is close, or the question names
        # something no document mentions (a small model would answer about it from other passages).
        retriever = self.retriever
        known = retriever.knows_word
        unknown = (retriever.unknown_names(standalone) or retriever.unknown_phrases(standalone)
                   or retriever.unknown_terms(standalone) or retriever.unknown_code_names(standalone))
        reason = ("no_evidence" if not has_evidence(hits) else "unknown_name" if unknown
                  else "other_language" if other_language(standalone, known) else None)
        if reason:
            yield REFUSAL
            timings.update(first_token=None, total=round(time.perf_counter() - started, 3), backend=None, model=None)
            yield Answer(question, REFUSAL, False, hits=hits, timings=timings, rewritten_question=rewritten, decline_reason=reason)
            return

        # The passage budget grows with k (MAX_PASSAGE_CHARS is for the default k=2): a compound
        # question's second part must not lose its passage to the first part's long one.
        budget = MAX_PASSAGE_CHARS * max(k, 2) // 2
        candidates = hits
        hits = select_passages(hits, self.documents, k, max_chars=budget)
        given = hits
        generator = self.generator
        state = {"first_token": None}

        def generate(messages_):  # a reply streamed, for the part checks of compound.py
            return self._generate(messages_, state)

        def check(text_: str, question_: str):
            return check_answer(text_, hits, question_, self.documents, known)
        messages, text, checked = yield from self._attempt(standalone, hits, state, known)
        alone = [[hit] for hit in hits[:_PASSAGES_ALONE]] if len(hits) > 1 else []
        for focused in alone:
            if not gave_nothing(checked):
                break
            # The small model gives up too easily when several passages compete for its attention
            # (measured: 2 of 18 answerable seed questions, evidence ranked first; py07, evidence
            # second). Asking again with one passage alone costs ~1.5 s a try on a decline and
            # rescues those; the citation check guards these answers like the first.
            retry = yield from self._attempt(standalone, focused, state, known)
            if not retry[2].declined:
                hits, (messages, text, checked) = focused, retry
        by_parts = None
        if gave_nothing(checked):
            # Still declined, yet a passage sentence may nearly restate the question: then it is
            # the answer, quoted verbatim (see quoting.QUOTE_MIN_STEMS for how "nearly" was measured).
            quoted = quote_answer(hits, standalone, self.documents, known)
            if quoted.declined:
                quoted = self._pointed_sentence(standalone, hits, state, known)
            if quoted.declined:
                by_parts = yield from answer_by_parts(standalone, hits, generate, check)
            if not quoted.declined:
                checked = quoted
            elif by_parts is not None:
                checked = by_parts  # its parts are asked for already
        if gave_nothing(checked) and (by_parts is None or by_parts.declined):
            # Every attempt on the best passages declined, yet the answer can follow a passage
            # given: a heading or a scene-setting sentence ranks first, and the sentence after it
            # says what to do in words the question does not share (py03, rm09). One more attempt
            # reads what follows each passage, guarded by the same check. (The next-ranked hits
            # instead were measured and not adopted: rm09 was answered from a related passage.)
            later = passages_below(given, self.documents, budget)
            attempt = (yield from self._attempt(standalone, later, state, known)) if later else None
            if attempt and not attempt[2].declined:
                hits, (messages, text, checked), by_parts = later, attempt, None
        if not checked.declined and by_parts is None:
            completed = yield from complete_parts(standalone, hits, checked, generate, check)
            if completed.declined:
                # Answered twice with something else than the question asks for ("Which module
                # ...?" with a sentence that names no module, pyh04): the passages ranked next
                # are read once, under the same checks, and kept only if they answer every part.
                later = select_passages([c for c in candidates if not any(_overlap(c, g) for g in given)],
                                        self.documents, k, max_chars=budget)
                attempt = (yield from self._attempt(standalone, later, state, known)) if later else None
                if attempt and not attempt[2].declined and not unanswered_parts(standalone, strip_markers(attempt[2].text)):
                    hits, (messages, text, completed) = later, attempt
            checked = completed
        finished = time.perf_counter()
        usage = next((u for m, u in state.get("usage", ()) if m is messages and u), None)  # the backend's own counts
        timings.update(
            first_token=round((state["first_token"] or finished) - started, 3),
            total=round(finished - started, 3),
            backend=generator.backend,
            model=generator.model_name,
            prompt_tokens=usage["prompt_tokens"] if usage else sum(generator.count_tokens(m["content"]) for m in messages),
            completion_tokens=usage["completion_tokens"] if usage else generator.count_tokens(text) if text else 0,
        )
        common = dict(hits=hits, timings=timings, rewritten_question=rewritten, unsupported_sentences=checked.unsupported,
                      prompt=_render(messages), raw_answer=text)
        if checked.declined:
            reason = "model_declined" if not checked.sentences else "unsupported"
            yield Answer(question, REFUSAL, False, decline_reason=reason, **common)
        else:
            yield Answer(question, checked.text, True, citations=checked.citations, **common)

    def _attempt(self, question: str, passages: list[Hit], state: dict, known):
        """Ask the model with these passages, streaming its reply, and check the reply against
        them: (messages, reply, checked answer). A reply that only points at a passage ("[1]", or
        its heading) is asked for once more, as a full sentence; the first reply's stand-in (a
        quoted passage sentence) is kept when the second says nothing that passes the check."""
        messages = answer_messages(question, passages)
        text = yield from self._generate(messages, state)
        checked = check_answer(text, passages, question, self.documents, known)
        if only_points(text, checked):
            again = answer_messages(question, passages, full_sentence=True)
            # One sentence was asked for: the model goes on to what the question did not ask ("This
            # file is located in the directory ...", pyf06), which is not kept.
            reply = first_sentence((yield from self._generate(again, state)))
            retried = check_answer(reply, passages, question, self.documents, known)
            if not gave_nothing(retried):
                return again, reply, retried
        return messages, text, checked

    def _pointed_sentence(self, question: str, hits: list[Hit], state: dict, known):
        """After two declines: the model is asked only to point at the passage sentence that
        answers, by copying it. A sentence found word for word in a passage, sharing enough of the
        question (POINTED_MIN_STEMS) and of the kind it asks for, is the answer, quoted; small
        models decline paraphrased questions ("became" for "become") they can still point at."""
        pieces = self._generate(pointing_messages(question, hits), state)
        reply = "".join(pieces)  # not streamed: only a sentence found in a passage is shown
        return pointed_answer(reply, hits, question, self.documents, known)

    def _serial(self):
        """The model lock around an in-process model (one KV cache: one stream at a time); nothing
        around a generator that runs streams concurrently (a server, bounded by its own plug-in)."""
        return contextlib.nullcontext() if getattr(self.generator, "concurrent", False) else self._model_lock

    def _generate(self, messages: list[dict[str, str]], state: dict) -> Iterator[str]:
        """Stream the model's reply to `messages`, holding back a NOT_IN_PASSAGES reply (it is
        not text for the user); returns the whole reply. Records the first token's time in `state`."""
        pieces: list[str] = []
        held = ""
        with self._serial():
            stream = self.generator.stream(messages, max_tokens=_ANSWER_TOKENS)
            for piece in stream:
                if state["first_token"] is None:
                    state["first_token"] = time.perf_counter()
                pieces.append(piece)
                held += piece
                # Held back too: markers with nothing yet after them ("[1]"), which may be the
                # whole reply, then answered by a quote or asked again (see _attempt).
                if NOT_FOUND.startswith(held.strip()) or model_declined(held) or _MARKERS_SO_FAR.fullmatch(held):
                    continue
                yield held
                held = ""
            if held and _MARKERS_SO_FAR.fullmatch(held) and not _MARKERS_SO_FAR.fullmatch("".join(pieces)):
                yield held  # the markers that end an answer
        state.setdefault("usage", []).append((messages, getattr(stream, "usage", None)))  # token counts, when the stream has them
        return "".join(pieces)


def only_points(reply: str, checked: CheckedAnswer) -> bool:
    """The reply names where the answer is instead of saying it: passage markers alone ("[1]"),
    or sentences that are all headings ("7.3 Accessing builtin datasets [1]")."""
    if markers_only(reply):
        return True
    return bool(checked.sentences) and all(any(m.startswith("a heading says") for m in s.missing) for s in checked.sentences)


def gave_nothing(checked: CheckedAnswer) -> bool:
    """The model declined, replied nothing that could be checked, or every sentence it wrote failed
    the check: nothing of the reply can be shown. Asking again (the best passage alone, then a
    quote, then pointing) is guarded by the same check; measured in the issue note: a wrong number
    ("30 bits" for "4300 digits"), the prompt's invented example copied back, or a passage's
    "three-eighths" written as "3/8" had ended in a decline with the answer in the passages."""
    return checked.declined and not any(s.supported for s in checked.sentences)


def final_answer(items: Iterator[str | Answer]) -> Answer:
    """Run a streamed answer to its end and return the `Answer` it always finishes with."""
    answer = None
    for item in items:
        if isinstance(item, Answer):
            answer = item
    if answer is None:
        raise PakusError("the answer stream ended without an answer")  # a bug of ours, said plainly
    return answer


def _overlap(hit: Hit, passage: Hit) -> bool:
    """Whether a hit's text is (part of) a passage already given: same document, spans crossing."""
    return hit.source == passage.source and hit.start < passage.end and passage.start < hit.end


def _render(messages: list[dict[str, str]]) -> str:
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


class Chat:
    """A conversation: keeps history so follow-up questions are understood."""

    def __init__(self, bot: Bot | None = None):
        self.bot = bot or Bot()
        self.history: list[tuple[str, Answer]] = []

    def rewrite(self, question: str) -> str | None:
        return self.bot.rewrite(question, self.history)

    def ask(self, question: str, k: int | None = None) -> Answer:
        return final_answer(self.ask_stream(question, k=k))

    def ask_stream(self, question: str, k: int | None = None, *, rewritten: str | None = None) -> Iterator[str | Answer]:
        for item in self.bot.ask_stream(question, history=self.history, k=k, rewritten=rewritten):
            if isinstance(item, Answer):
                self.history.append((question, item))
            yield item

    def clear(self) -> None:
        self.history.clear()
