"""Plain text: a `.txt` file -> a `Document`, in whatever common encoding it was saved.

Plain text gets the Markdown cleaning too: notes and pages saved as text often carry a "# " heading
or "**bold**", and the cleaning leaves ordinary prose as it is.
"""

from __future__ import annotations

from pathlib import Path

from ..schema import Document
from .markdown import clean_text, read_text_file


class TextConverter:
    format = "text"
    suffixes = (".txt",)

    def convert(self, path: Path, source: str) -> Document:
        text, offsets, sections = clean_text(read_text_file(path))
        # A text file has no title field: its first heading, else its first line if short, else its name.
        first_line = text.split("\n", 1)[0].strip()
        title = sections[0][1] if sections else first_line if 0 < len(first_line) <= 120 else path.stem.replace("-", " ").replace("_", " ")
        return Document(source=source, title=title, text=text, offsets=offsets, sections=sections, metadata={"format": self.format})


CONVERTER = TextConverter()
