"""Description terms made headings: what trafilatura's Markdown loses of a description list.

trafilatura writes a description list (<dl>) as a bullet list, so a term and its description are
two bullets, and the term heads nothing. Yet a term titles its description: "csv.writer(csvfile,
...)" heads the paragraphs that say what csv.writer does, a glossary's term its definition, an
FAQ's question its answer. As a heading, it names the section of every chunk cut from that
description, so that a chunk saying "the value None is written as the empty string" is found by a
question about csv.writer (measured on the Python docs: README, "Quality and speed").
"""

from __future__ import annotations

import re

from ._main_content import letters_only

# Only a term whose description is this long heads it: a short one ("Release: 3.11.2", "Version
# 3.11") is a field of a record, not a topic.
TERM_MIN_DESCRIPTION_WORDS = 20


def terms_as_headings(markdown: str, tree) -> str:
    """`markdown` with the line of each description term (<dt>) made a heading."""
    terms = set()
    for term in tree.iter("dt"):
        description = term.getnext()
        text = " ".join(term.text_content().replace("¶", "").split())
        # A label ending in a colon ("Parameters:") names a part of a description, not a topic.
        if description is None or description.tag != "dd" or not text or text.endswith(":") or len(text) > 200:
            continue
        name = letters_only(text)  # a term of punctuation alone (".", "^") compares as nothing, and is left alone
        if name and len(description.text_content().split()) >= TERM_MIN_DESCRIPTION_WORDS:
            terms.add(name)
    if not terms:
        return markdown
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        body = re.sub(r"^\s*[-*+]\s+", "", line)
        if letters_only(body) in terms and not line.lstrip().startswith("#"):
            lines[i] = "#### " + body
    return "\n".join(lines)
