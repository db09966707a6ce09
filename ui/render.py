"""Answers, citations and errors as HTML for the chat page (the collection's header, documents and
uploads are render_collection.py's).

Pure functions from `rag.schema` records to HTML strings, so they can be tested without gradio or a
browser. Everything that came from a document or from the model is escaped here; the only markup in
the output is ours.

Two constraints come from the chat component, which runs its messages through a Markdown parser:
- the output never contains a newline: a blank line would end the raw-HTML block and hand the rest
  of the message (passages full of `*`, `_` and `$`) to Markdown;
- ids must be unique in the page, so every id starts with a per-turn prefix chosen by the caller.
"""

from __future__ import annotations

import re
from html import escape

from rag.schema import Answer, Citation, Hit

# The collection's header, documents and upload progress are render_collection.py's; still
# importable from here.
from .render_collection import DOCUMENTS_SHOWN, render_documents, render_header, render_upload, report_line  # noqa: F401

# `[1]`, `[2, 3]`: the markers the model writes and the citation stage keeps.
MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")

DECLINE_REASONS = {
    "no_evidence": "No passage in the documents is close enough to the question.",
    "unknown_name": "The question names something the documents never mention.",
    "model_declined": "The closest passages do not contain the answer.",
    "unsupported": "The model's draft was not backed by the passages it cited, so it is not shown as an answer.",
}

TIMING_LABELS = {
    "rewrite": "Follow-up rewrite",
    "retrieval": "Retrieval",
    "first_token": "First token",
    "generation": "Generation",
    "total": "Total",
    "backend": "Backend",
    "model": "Model",
    "prompt_tokens": "Prompt tokens",
    "completion_tokens": "Answer tokens",
}


def _lines(fragment: str) -> str:
    """Turn the newlines of an escaped fragment into <br> (see the module docstring)."""
    return fragment.replace("\r\n", "\n").replace("\n", "<br>")


def _find(needle: str, haystack: str) -> tuple[int, int] | None:
    """Span of `needle` in `haystack`, exactly or else ignoring differences in whitespace."""
    needle = needle.strip()
    if not needle:
        return None
    at = haystack.find(needle)
    if at >= 0:
        return at, at + len(needle)
    words = needle.split()
    match = re.search(r"\s+".join(re.escape(w) for w in words), haystack)
    return match.span() if match else None


def _section_name(section: str) -> str:
    """Headings in the sources often end in a colon, which reads badly as a label."""
    return section.strip().rstrip(":").strip()


def _section(section: str) -> str:
    section = _section_name(section)
    return f'<span class="pk-sec">{escape(section)}</span>' if section else ""


def _page(page: int | None) -> str:
    """"p. 4" beside the document's name, for a format with pages (PDF)."""
    return f'<span class="pk-page">p. {page}</span>' if page else ""


def _where(source: str, page: int | None, start: int, end: int) -> str:
    """Where the passage is: the file, the page for a paged format, and the character span (within
    that page's text for a PDF)."""
    at = f"p. {page}, characters" if page else "characters"
    return f"{escape(source)}, {at} {start}–{end}"


def _hit_span(hit: Hit) -> tuple[int, int]:
    """A hit's span as `Hit.to_dict` gives it: within its page's text for a PDF."""
    offset = hit.chunk.page_start if hit.page else 0
    return hit.start - offset, hit.end - offset


def anchor_id(prefix: str, n: int) -> str:
    """The id of citation n's passage; `[n]` in the answer links here."""
    return f"{prefix}c{n}"


def highlight(passage: str, quote: str) -> str:
    """The passage, escaped, with the quote wrapped in <mark>; the quote alone if it is not found."""
    if not passage:
        return f"<mark>{_lines(escape(quote))}</mark>"
    span = _find(quote, passage)
    if span is None:
        # The passage still shows where the claim comes from; the quote goes first, marked, so the
        # reader sees what the check compared.
        return f"<mark>{_lines(escape(quote))}</mark><br><br>{_lines(escape(passage))}"
    start, end = span
    return (
        _lines(escape(passage[:start]))
        + f"<mark>{_lines(escape(passage[start:end]))}</mark>"
        + _lines(escape(passage[end:]))
    )


def link_markers(escaped_text: str, prefix: str, citations: list[Citation]) -> str:
    """Turn each `[n]` that names a citation into a link to that citation's passage.

    Works on escaped text: escaping leaves brackets and digits alone, and the text can hold no tags.
    Numbers that name no citation stay as plain text.
    """
    known = {c.n: c for c in citations}

    def link(match: re.Match) -> str:
        numbers = [int(x) for x in re.split(r"\s*,\s*", match.group(1))]
        if not any(n in known for n in numbers):
            return match.group(0)
        parts = []
        for n in numbers:
            if n not in known:
                parts.append(f"[{n}]")
                continue
            c = known[n]
            section = _section_name(c.section)
            title = escape(f"Source {n}: {c.title}" + (f", {section}" if section else ""))
            parts.append(f'<a class="pk-ref" href="#{anchor_id(prefix, n)}" title="{title}">[{n}]</a>')
        return "".join(parts)

    return MARKER.sub(link, escaped_text)


def _answer_body(answer: Answer, prefix: str) -> tuple[str, list[str]]:
    """The answer text as paragraphs, with unsupported sentences flagged in place.

    Returns the HTML and the unsupported sentences that are no longer in the text (the citation
    check removed them), which the caller lists separately.
    """
    text = answer.answer.strip()
    spans: list[tuple[int, int]] = []
    removed: list[str] = []
    for sentence in answer.unsupported_sentences:
        span = _find(sentence, text)
        if span is None or any(s < span[1] and span[0] < e for s, e in spans):
            if span is None:
                removed.append(sentence)
            continue
        spans.append(span)
    spans.sort()

    pieces, at = [], 0
    for start, end in spans:
        pieces.append(escape(text[at:start]))
        pieces.append(
            '<span class="pk-unsupported" title="No cited passage supports this sentence">'
            f"{escape(text[start:end])}</span>"
        )
        at = end
    pieces.append(escape(text[at:]))
    body = link_markers("".join(pieces), prefix, answer.citations)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
    return "".join(f"<p>{_lines(p)}</p>" for p in paragraphs), removed


def _badge(supported: bool) -> str:
    if supported:
        return '<span class="pk-badge pk-ok" title="The check found this passage backs the sentence">✓ verified</span>'
    return '<span class="pk-badge pk-warn" title="The check could not confirm this passage backs the sentence">⚠ not verified</span>'


def citation_card(citation: Citation, prefix: str) -> str:
    """A collapsed card: number, document, section, verdict and the quote; opening it shows the
    quote highlighted inside its passage."""
    section = _section(citation.section)
    return (
        f'<details class="pk-card{"" if citation.supported else " pk-card-warn"}">'
        f'<summary><span class="pk-n">{citation.n}</span>'
        f'<span class="pk-head"><span class="pk-doc">{escape(citation.title)}</span>{_page(citation.page)}{section}</span>'
        f"{_badge(citation.supported)}"
        f'<span class="pk-preview">{_lines(escape(citation.quote))}</span></summary>'
        f'<div class="pk-passage" id="{anchor_id(prefix, citation.n)}">'
        f"{highlight(citation.passage, citation.quote)}</div>"
        f'<div class="pk-where">{_where(citation.source, citation.page, citation.start, citation.end)}</div>'
        "</details>"
    )


def hit_card(hit: Hit, number: int) -> str:
    """A closest passage offered after a decline: no quote to highlight, so the preview is its start."""
    section = _section(hit.section)
    return (
        '<details class="pk-card pk-card-hit">'
        f'<summary><span class="pk-n">{number}</span>'
        f'<span class="pk-head"><span class="pk-doc">{escape(hit.title)}</span>{_page(hit.page)}{section}</span>'
        f'<span class="pk-preview">{_lines(escape(hit.text))}</span></summary>'
        f'<div class="pk-passage">{_lines(escape(hit.text))}</div>'
        f'<div class="pk-where">{_where(hit.source, hit.page, *_hit_span(hit))}</div>'
        "</details>"
    )


def searched_for(question: str, rewritten: str | None) -> str:
    """The stand-alone question a follow-up was rewritten into, so the reader sees what was searched."""
    rewritten = (rewritten or "").strip()
    if not rewritten or rewritten == question.strip():
        return ""
    return f'<div class="pk-searched">Searched for: <q>{escape(rewritten)}</q></div>'


def render_answer(answer: Answer, prefix: str) -> str:
    """The whole assistant message for a finished answer (or a decline)."""
    if not answer.answered:
        return render_declined(answer)
    body, removed = _answer_body(answer, prefix)
    parts = ['<div class="pk-msg pk-answered">', searched_for(answer.question, answer.rewritten_question), f'<div class="pk-text">{body}</div>']
    if answer.unsupported_sentences:
        note = "Sentences marked like this are not supported by the cited passages."
        if removed:
            left_out = "".join(f"<li>{escape(s)}</li>" for s in removed)
            note = f"Left out because no passage supports them:<ul>{left_out}</ul>"
        parts.append(f'<div class="pk-flag">⚠ {note}</div>')
    if answer.citations:
        cards = "".join(citation_card(c, prefix) for c in sorted(answer.citations, key=lambda c: c.n))
        parts.append(f'<div class="pk-sources"><div class="pk-label">Sources</div>{cards}</div>')
    parts.append("</div>")
    return "".join(parts)


def render_declined(answer: Answer) -> str:
    """A decline is a normal outcome, not an error: say so, and offer the closest passages."""
    reason = DECLINE_REASONS.get(answer.decline_reason or "", "")
    parts = [
        '<div class="pk-msg pk-declined">',
        searched_for(answer.question, answer.rewritten_question),
        '<div class="pk-decline-box"><div class="pk-decline-title">Not in the documents</div>',
        f"<p>{_lines(escape(answer.answer.strip()))}</p>",
        f'<p class="pk-reason">{escape(reason)}</p>' if reason else "",
        "</div>",
    ]
    if answer.unsupported_sentences:
        draft = "".join(f"<li>{escape(s)}</li>" for s in answer.unsupported_sentences)
        parts.append(f'<details class="pk-flag"><summary>⚠ The unsupported draft</summary><ul>{draft}</ul></details>')
    if answer.hits:
        cards = "".join(hit_card(h, i) for i, h in enumerate(answer.hits, start=1))
        parts.append(f'<div class="pk-sources"><div class="pk-label">Closest passages</div>{cards}</div>')
    parts.append("</div>")
    return "".join(parts)


def render_streaming(text: str, question: str = "", rewritten: str | None = None) -> str:
    """The answer while it is being generated: plain escaped text and a cursor."""
    paragraphs = [p for p in re.split(r"\n\s*\n", escape(text.lstrip())) if p.strip()] or [""]
    paragraphs[-1] += '<span class="pk-cursor"></span>'
    body = "".join(f"<p>{_lines(p)}</p>" for p in paragraphs)
    return f'<div class="pk-msg pk-streaming">{searched_for(question, rewritten)}<div class="pk-text">{body}</div></div>'


def render_pending(status: str = "Searching the documents…", question: str = "", rewritten: str | None = None) -> str:
    """Shown from the moment the question is sent until the first piece of the answer arrives."""
    return (
        f'<div class="pk-msg">{searched_for(question, rewritten)}<div class="pk-pending">'
        f'<span class="pk-dots"><i></i><i></i><i></i></span> {escape(status)}</div></div>'
    )


def render_error(message: str) -> str:
    """A readable message in place of an answer; the server and the conversation carry on."""
    return (
        '<div class="pk-msg pk-error"><div class="pk-error-title">Could not answer</div>'
        f"<p>{_lines(escape(message))}</p></div>"
    )


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _timing(key: str, value) -> str:
    """Seconds for the steps, counts for tokens, text for names; "–" for a step that did not run."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return escape(str(value))
    if key.endswith("tokens"):
        return f"{value:,}"
    return f"{value:.2f} s"


def _explain_row(number: int, hit: Hit, cited: bool) -> str:
    section = _section(hit.section)
    tag = '<span class="pk-tag">cited</span>' if cited else ""
    return (
        f'<tr><td>{number}</td><td><div class="pk-src"><span class="pk-doc">{escape(hit.title)}</span>{_page(hit.page)}{section}{tag}</div></td>'
        f"<td>{_score(hit.score)}</td><td>{_score(hit.dense_score)}</td><td>{_score(hit.lexical_score)}</td></tr>"
    )


def render_explain(answer: Answer | None) -> str:
    """Why the last answer looks the way it does: the passages found, their scores, the timings."""
    if answer is None:
        return '<div class="pk-explain pk-muted">Ask a question to see how its passages were found and how long each step took.</div>'
    cited = {c.chunk_id for c in answer.citations if c.chunk_id}
    rows = "".join(_explain_row(i, h, h.chunk_id in cited) for i, h in enumerate(answer.hits, start=1))
    table = (
        '<div class="pk-table-wrap"><table class="pk-table"><thead><tr><th>#</th><th>Passage</th>'
        '<th title="Fused rank score">Fused</th><th title="Cosine similarity">Dense</th>'
        f'<th title="BM25">Lexical</th></tr></thead><tbody>{rows}</tbody></table></div>'
        if rows
        else '<p class="pk-muted">No passages were retrieved.</p>'
    )
    timings = "".join(
        f"<div><dt>{escape(TIMING_LABELS.get(k, k.replace('_', ' ').capitalize()))}</dt>"
        f"<dd>{_timing(k, v)}</dd></div>"
        for k, v in answer.timings.items()
    )
    searched = answer.rewritten_question or answer.question
    outcome = "answered" if answer.answered else "declined: " + escape(DECLINE_REASONS.get(answer.decline_reason or "", "no reason given")).lower()
    return (
        '<div class="pk-explain">'
        f'<p><span class="pk-muted">Searched for</span> <q>{escape(searched)}</q> · {outcome}</p>'
        f"{table}"
        + (f'<dl class="pk-timings">{timings}</dl>' if timings else "")
        + "</div>"
    )


def render_note(text: str) -> str:
    """A line from the page itself in the chat (not an answer), e.g. that the collection changed."""
    return f'<div class="pk-msg pk-note">{escape(text)}</div>'
