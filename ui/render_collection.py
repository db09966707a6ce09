"""The collection's parts of the chat page as HTML: the header naming the collection and its
documents, the table of those documents, and an upload's progress, file by file.

Pure functions like render.py's, testable without gradio: everything that came from a document, a
file name or a visitor is escaped here. These go into the page's own HTML blocks, not into chat
messages, so render.py's rules for the chat (no newline, per-turn ids) do not bind them.
"""

from __future__ import annotations

from html import escape


def _quoted_titles(titles: list[str], shown: int = 3) -> str:
    quoted = [f"“{escape(t)}”" for t in titles[:shown]]
    rest = len(titles) - len(quoted)
    if rest > 0:
        return ", ".join(quoted) + f" and {rest:,} more"
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def render_header(collection: str, documents: list[dict] | None, problem: str | None = None) -> str:
    """The page's header: which collection answers, from which documents. Nothing here knows any
    particular collection: the subtitle is made from the collection's own catalog."""
    name = f'<b class="pk-coll">{escape(collection)}</b>'
    if problem:
        about = f"Collection {name} cannot be opened: {escape(problem)}"
    elif not documents:
        about = f"Collection {name} has no documents yet: add some under <i>Documents</i> below."
    else:
        count = "one document" if len(documents) == 1 else f"{len(documents):,} documents"
        titles = [d.get("title") or d.get("source", "") for d in documents]
        about = (f"Answering from {name}: {count}, {_quoted_titles(titles)}. Every sentence has a numbered "
                 "source you can open; when the documents don't say, the bot says so. Runs entirely on this machine.")
    return (
        '<header id="pk-header"><div class="pk-title">pakus <span class="pk-tagline"><span class="pk-dot">· </span>'
        f'ask the documents</span></div><p class="pk-subtitle">{about}</p></header>'
    )


DOCUMENTS_SHOWN = 200  # a collection of thousands lists the first ones; `pakus sources` lists all


def _file_name(source: str) -> str:
    return source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def render_documents(collection: str, documents: list[dict] | None, problem: str | None = None) -> str:
    """The collection's documents: title, file, format, pages and chunks."""
    if problem:
        return f'<div class="pk-docs pk-muted">{escape(problem)}</div>'
    if not documents:
        return f'<div class="pk-docs pk-muted">No documents in {escape(collection)} yet.</div>'
    rows = "".join(
        f'<tr><td>{escape(d.get("title") or "")}</td>'
        f'<td><span class="pk-file" title="{escape(d.get("source", ""))}">{escape(_file_name(d.get("source", "")))}</span></td>'
        f'<td>{escape(str(d.get("format") or "–"))}</td><td>{d.get("pages") or "–"}</td><td>{d.get("chunks") or 0:,}</td></tr>'
        for d in documents[:DOCUMENTS_SHOWN]
    )
    more = len(documents) - DOCUMENTS_SHOWN
    note = (f'<p class="pk-muted">and {more:,} more: <code>pakus sources -c {escape(collection)}</code> lists them all.</p>'
            if more > 0 else "")
    return (
        '<div class="pk-docs"><div class="pk-table-wrap"><table class="pk-table"><thead><tr><th>Title</th><th>File</th>'
        f'<th>Format</th><th>Pages</th><th>Chunks</th></tr></thead><tbody>{rows}</tbody></table></div>{note}</div>'
    )


_DONE = {"added": "✓", "updated": "✓", "unchanged": "=", "removed": "–"}


def report_line(report) -> str:
    """One uploaded file's outcome (a `rag.ingest.FileReport`), as a list item."""
    name = escape(_file_name(report.source))
    if report.status == "skipped":
        return f'<li class="pk-fail"><span class="pk-mark">✗</span> <b>{name}</b>: {escape(report.reason or "skipped")}</li>'
    note = f" ({escape(report.reason)})" if report.reason else ""
    chunks = f" · {report.chunks:,} chunk{'s' if report.chunks != 1 else ''}" if report.chunks else ""
    return (f'<li class="pk-done"><span class="pk-mark">{_DONE.get(report.status, "·")}</span> '
            f"{escape(report.status)} <b>{name}</b>{note}{chunks}</li>")


def render_upload(collection: str, reports: list, total: int, *, done: bool = False, seconds: float = 0.0,
                  error: str | None = None) -> str:
    """Progress of an upload, one line per file as each is indexed, then a summary."""
    lines = "".join(report_line(r) for r in reports)
    name = f"<b>{escape(collection)}</b>" if collection else "the collection"
    if error:
        status = f'<div class="pk-upload-error">⚠ {escape(error)}</div>'
    elif not done:
        status = (f'<div class="pk-pending"><span class="pk-dots"><i></i><i></i><i></i></span> Adding {total} '
                  f'file{"s" if total != 1 else ""} to {name}: {len(reports)} of {total} done ({seconds:.0f} s)</div>')
    else:
        indexed = sum(1 for r in reports if not r.failed)
        failed = len(reports) - indexed
        status = (f'<div class="pk-upload-done">{indexed} of {len(reports)} file{"s" if len(reports) != 1 else ""} '
                  f'in {name}' + (f"; {failed} could not be added" if failed else "") + f" ({seconds:.1f} s)</div>")
    return f'<div class="pk-upload">{status}' + (f"<ul>{lines}</ul>" if lines else "") + "</div>"
