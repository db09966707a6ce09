"""Who owns what at run time: one Bot per collection for the process, one Conversation per browser tab.

A Bot holds an open collection, and the loaded models, which every Bot of the process shares: the
first one loads them, the others borrow them (`Bot.share_models_with`), so switching collections
never loads a model again. Bots are shared by every visitor. A Conversation holds one tab's chat
history and what its chat window shows; it lives in that tab's `gr.State`, so nothing is shared
between tabs.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

from rag.errors import PakusError
from rag.schema import Answer
from rag.settings import Settings

BotFactory = Callable[[Settings], Any]  # Settings -> a rag.Bot (or a test double with the same methods)


def default_bot_factory(settings: Settings):
    from rag import Bot  # the library loads its models lazily; importing it here keeps `import ui` cheap

    return Bot(settings)


def _close(bot) -> None:
    close = getattr(bot, "close", None)
    if close is not None:
        close()


@dataclass
class _Entry:
    bot: Any
    users: int = 0
    retired: bool = False  # replaced after the collection changed; closed when its last user leaves


class BotPool:
    """At most one Bot per collection, handed to every session; all of them share one set of models.

    The first `get` of a collection also warms its bot up (opens the collection; the first bot of
    the process also loads the models), under the pool's lock: a second caller waits for that load
    instead of starting another copy of the model. A bot whose warm-up fails is not kept, so the
    next question tries again and shows the error.

    After files are added to a collection, `changed` retires its bot: the next question gets a
    fresh one (sharing the models) that sees the new documents, while an answer already running
    finishes on the old one, which is closed when it is done.
    """

    def __init__(self, settings: Settings, factory: BotFactory | None = None):
        self.settings = settings
        self._factory = factory or default_bot_factory
        self._entries: dict[str, _Entry] = {}
        self._models: Any = None  # the first bot that loaded the models; the others borrow them
        self._lock = threading.Lock()

    def ready(self, collection: str | None = None) -> bool:
        """Whether this collection's bot is loaded, i.e. `get` will not make the caller wait for a load."""
        return (collection or self.settings.collection) in self._entries

    def _entry(self, collection: str) -> _Entry:
        """The collection's entry, building and warming its bot if needed (call with the lock held)."""
        entry = self._entries.get(collection)
        if entry is None:
            bot = self._factory(self.settings.with_overrides(collection=collection))
            if self._models is not None and self._models is not bot and hasattr(bot, "share_models_with"):
                bot.share_models_with(self._models)
            if hasattr(bot, "warm_up"):
                bot.warm_up()
            if self._models is None:
                self._models = bot
            entry = self._entries[collection] = _Entry(bot)
        return entry

    def get(self, collection: str | None = None):
        with self._lock:
            return self._entry(collection or self.settings.collection).bot

    @contextmanager
    def use(self, collection: str | None = None) -> Iterator[Any]:
        """The collection's bot, counted as in use until the block ends (see `changed`)."""
        with self._lock:
            entry = self._entry(collection or self.settings.collection)
            entry.users += 1
        try:
            yield entry.bot
        finally:
            with self._lock:
                entry.users -= 1
                close_now = entry.retired and entry.users == 0
            if close_now:
                _close(entry.bot)

    def changed(self, collection: str) -> None:
        """The collection's documents changed: the next question gets a bot that sees them."""
        with self._lock:
            entry = self._entries.pop(collection, None)
            if entry is None:
                return
            entry.retired = True
            close_now = entry.users == 0
        if close_now:
            _close(entry.bot)

    def embedder(self):
        """The loaded embedder, so files are added with the very model the questions are embedded
        with (loaded now if no question came yet); None when the first collection cannot be opened
        (the ingest step then loads its own)."""
        if self._models is None:
            try:
                self.get()
            except PakusError:
                return None
        return getattr(self._models, "embedder", None)

    def concurrent(self) -> bool:
        """Whether the loaded generator runs several answers at once (a server); False while unknown."""
        models = self._models
        generator = getattr(models, "generator", None) if models is not None else None  # loaded by its warm-up
        return bool(getattr(generator, "concurrent", False))


class AnswerGate:
    """How many answers are generated at once, in the order the questions came.

    An in-process model answers one question at a time (one KV cache); a generator that says it is
    `concurrent` (a server such as vLLM or llama.cpp's) answers up to `bound` at once. A tab that
    asks while every place is taken says that it is waiting its turn instead of pretending to search.
    """

    def __init__(self, bound: int = 1):
        self.bound = max(1, bound)
        self.limit = 1  # until the generator is known
        self.running = 0
        self._waiting: deque[object] = deque()
        self._changed = threading.Condition()

    @property
    def busy(self) -> bool:
        with self._changed:
            return self.running >= self.limit or bool(self._waiting)

    @contextmanager
    def turn(self, concurrent: bool) -> Iterator[None]:
        ticket = object()
        with self._changed:
            self.limit = self.bound if concurrent else 1
            self._waiting.append(ticket)
            self._changed.wait_for(lambda: self._waiting[0] is ticket and self.running < self.limit)
            self._waiting.popleft()
            self.running += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self.running -= 1
                self._changed.notify_all()


def _new_chat(bot):
    from rag import Chat

    return Chat(bot)


@dataclass
class Conversation:
    """One browser tab's conversation.

    `messages` is what the chat window shows (including errors and notes, which are not part of the
    history); `chat` is the library's Chat, whose history makes follow-up questions work. `turns`
    numbers the answers so that the ids their citation links point to are unique in the page.
    """

    messages: list[dict[str, str]] = field(default_factory=list)
    chat: Any = None
    collection: str | None = None
    turns: int = 0
    last_answer: Answer | None = None
    pending: str = ""  # the question between "shown in the chat" and "being answered"

    def chat_for(self, bot, collection: str):
        """This tab's Chat bound to `bot`. A follow-up is read against earlier answers from the same
        collection only: another collection starts a new history. A fresh bot of the same
        collection (after an upload) keeps the history."""
        if self.chat is None or self.collection != collection:
            self.chat = _new_chat(bot)
        elif getattr(self.chat, "bot", bot) is not bot:
            history = list(self.chat.history)
            self.chat = _new_chat(bot)
            self.chat.history = history
        self.collection = collection
        return self.chat

    def next_prefix(self) -> str:
        self.turns += 1
        return f"pk-t{self.turns}-"
