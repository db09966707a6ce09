"""Who owns what at run time: one Bot per backend for the process, one Conversation per browser tab.

A Bot holds the loaded model, so it is shared by every visitor and built once per backend, on first
use. A Conversation holds one tab's chat history and what its chat window shows; it lives in that
tab's `gr.State`, so nothing is shared between tabs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from rag.schema import Answer
from rag.settings import Settings

BotFactory = Callable[[Settings], Any]  # Settings -> a rag.Bot (or a test double with the same methods)


def default_bot_factory(settings: Settings):
    from rag import Bot  # the library loads its models lazily; importing it here keeps `import ui` cheap

    return Bot(settings)


class BotPool:
    """Builds at most one Bot per backend and hands the same one to every session.

    The first `get` of a backend also warms its bot up (loads the index and the model), under the
    pool's lock: a second caller waits for that load instead of starting another copy of the model.
    A bot whose warm-up fails is not kept, so the next question tries again and shows the error.
    """

    def __init__(self, settings: Settings, factory: BotFactory | None = None):
        self.settings = settings
        self._factory = factory or default_bot_factory
        self._bots: dict[str, Any] = {}
        self._lock = threading.Lock()

    def ready(self, backend: str | None = None) -> bool:
        """Whether this backend's bot is loaded, i.e. `get` will not make the caller wait for a load."""
        return (backend or self.settings.backend) in self._bots

    def get(self, backend: str | None = None):
        backend = backend or self.settings.backend
        with self._lock:
            if backend not in self._bots:
                # with_overrides validates the backend and raises ConfigError naming the valid ones.
                bot = self._factory(self.settings.with_overrides(backend=backend))
                if hasattr(bot, "warm_up"):
                    bot.warm_up()
                self._bots[backend] = bot
            return self._bots[backend]


class BusyCounter:
    """How many answers are being generated right now, across all tabs.

    The model answers one question at a time; a tab that asks while it is busy says that it is
    waiting its turn instead of pretending to search.
    """

    def __init__(self):
        self._count = 0
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self._count > 0

    def __enter__(self):
        with self._lock:
            self._count += 1
        return self

    def __exit__(self, *exc_info):
        with self._lock:
            self._count -= 1


def _new_chat(bot):
    from rag import Chat

    return Chat(bot)


@dataclass
class Conversation:
    """One browser tab's conversation.

    `messages` is what the chat window shows (including errors, which are not part of the history);
    `chat` is the library's Chat, whose history makes follow-up questions work. `turns` numbers the
    answers so that the ids their citation links point to are unique in the page.
    """

    messages: list[dict[str, str]] = field(default_factory=list)
    chat: Any = None
    backend: str | None = None
    turns: int = 0
    last_answer: Answer | None = None
    pending: str = ""  # the question between "shown in the chat" and "being answered"

    def chat_for(self, bot, backend: str):
        """This tab's Chat bound to `bot`; switching backends keeps the history."""
        if self.chat is None:
            self.chat = _new_chat(bot)
        elif self.backend != backend:
            history = list(self.chat.history)
            self.chat = _new_chat(bot)
            self.chat.history = history
        self.backend = backend
        return self.chat

    def next_prefix(self) -> str:
        self.turns += 1
        return f"pk-t{self.turns}-"
