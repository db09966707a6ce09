"""Terminal rendering for the CLI: hits, streamed answers with their sources, and the chat loop."""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterable
from typing import Any

import click

from .errors import PakusError
from .prompts import REFUSAL
from .schema import Answer, Hit

_WIDTH = 100


def _wrap(text: str, indent: str = "      ") -> str:
    return textwrap.fill(" ".join(text.split()), width=_WIDTH, initial_indent=indent, subsequent_indent=indent)


def _score(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def location(source: str, page: int | None, start: int, end: int) -> str:
    """Where a passage is: "file.md:120-220", or "file.pdf, p. 4:120-220" (span within the page)."""
    return f"{source}, p. {page}:{start}-{end}" if page else f"{source}:{start}-{end}"


def print_hits(hits: list[Hit], limit_chars: int | None = None) -> None:
    for hit in hits:
        header = f"[{hit.rank}] {hit.title}"
        if hit.section:
            header += f" — {hit.section}"
        click.echo(click.style(header, bold=True))
        span = hit.to_dict()
        click.echo(f"      {location(hit.source, hit.page, span['start'], span['end'])}   score {hit.score:.4f} (dense {_score(hit.dense_score)}, bm25 {_score(hit.lexical_score, 2)})")
        text = hit.text if limit_chars is None or len(hit.text) <= limit_chars else hit.text[:limit_chars].rstrip() + " ..."
        click.echo(_wrap(text))
        click.echo()


def print_sources(answer: Answer) -> None:
    if answer.unsupported_sentences:
        click.echo(click.style("Removed, not supported by the passages:", fg="yellow"))
        for sentence in answer.unsupported_sentences:
            click.echo(_wrap(f"✗ {sentence}", "  "))
        click.echo()
    if not answer.answered:
        if answer.hits:
            click.echo("Closest passages, to look for yourself:")
            click.echo()
            print_hits(answer.hits[:3], limit_chars=300)
        return
    click.echo("Sources:")
    for citation in answer.citations:
        mark = click.style("✓ verified", fg="green") if citation.supported else click.style("? not verified", fg="yellow")
        section = f" — {citation.section}" if citation.section else ""
        click.echo(f"  [{citation.n}] {citation.title}{section}   {mark}")
        click.echo(f"      {location(citation.source, citation.page, citation.start, citation.end)}")
        click.echo(_wrap(f"“{citation.quote}”"))


def print_explain(answer: Answer) -> None:
    click.echo()
    click.echo(click.style("Retrieval", bold=True))
    click.echo(f"  {'#':>2}  {'fused':>7}  {'dense':>6} {'(rank)':>6}  {'bm25':>6} {'(rank)':>6}  {'kind':<12} source / section")
    for hit in answer.hits:
        click.echo(f"  {hit.rank:>2}  {hit.score:7.4f}  {_score(hit.dense_score):>6} {('(' + str(hit.dense_rank) + ')') if hit.dense_rank else '':>6}"
                   f"  {_score(hit.lexical_score, 2):>6} {('(' + str(hit.lexical_rank) + ')') if hit.lexical_rank else '':>6}"
                   f"  {hit.chunk.kind:<12} {hit.source} / {hit.section}")
    if answer.prompt:
        click.echo()
        click.echo(click.style("Prompt", bold=True))
        click.echo(textwrap.indent(answer.prompt, "  "))
    if answer.raw_answer is not None:
        click.echo()
        click.echo(click.style("Model output (before the citation check)", bold=True))
        click.echo(textwrap.indent(answer.raw_answer, "  "))
    click.echo()
    click.echo(click.style("Timings", bold=True))
    for key, value in answer.timings.items():
        click.echo(f"  {key:<18} {value}")
    if answer.decline_reason:
        click.echo(f"  {'declined':<18} {answer.decline_reason}")


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", re.sub(r"\[\d+\]", " ", text).lower())


def _markers(text: str) -> set[int]:
    """The passage numbers a text cites: "[1]", "[1, 2]", "[2][3]"."""
    return {int(n) for group in re.findall(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]", text) for n in re.split(r"\s*[,;]\s*", group)}


def stream_answer(items: Iterable[str | Answer], *, explain: bool = False) -> Answer:
    """Print text pieces as they arrive, then the checked answer's sources."""
    streamed = ""
    answer = None
    for item in items:
        if isinstance(item, Answer):
            answer = item
            break
        streamed += item
        click.echo(item, nl=False)
        sys.stdout.flush()
    assert answer is not None
    if streamed and not streamed.endswith("\n"):
        click.echo()
    if not answer.answered and REFUSAL not in streamed:
        click.echo(REFUSAL)
    elif answer.answered and not streamed.strip():
        click.echo(answer.answer)  # nothing was streamed: the answer is a quote the check chose
    elif answer.answered and (_words(streamed) != _words(answer.answer) or _markers(streamed) - _markers(answer.answer)):
        # The check changed the words (removed a sentence, spelled out an abbreviation), or the
        # stream showed a marker that no source below carries ("[2]" with only [1] listed): show
        # what stands. Markers that only moved are not worth a second copy.
        click.echo(click.style("Checked answer: ", bold=True) + answer.answer)
    click.echo()
    print_sources(answer)
    if explain:
        print_explain(answer)
    return answer


def run_chat(chat) -> None:
    """Read questions until EOF or /quit; Ctrl-C stops the current answer, twice leaves."""
    click.echo("pakus chat: ask about the documents. /clear starts over, /quit (or Ctrl-D) leaves.", err=True)
    # A line that is not UTF-8 would otherwise raise inside input() and end the session with its
    # history: such bytes are read as they are, and the question check refuses that one line.
    try:
        sys.stdin.reconfigure(errors="surrogateescape")
    except (AttributeError, ValueError, OSError):
        pass
    while True:
        try:
            question = input("\nyou> ")
        except EOFError:
            click.echo()
            return
        except KeyboardInterrupt:
            click.echo()
            return
        command = question.strip().lower()
        if command in ("/quit", "/exit"):
            return
        if command == "/clear":
            chat.clear()
            click.echo("(conversation cleared)")
            continue
        if not command:
            continue
        try:
            rewritten = chat.rewrite(question)
            if rewritten:
                click.echo(click.style(f"(searching for: {rewritten})", dim=True))
            click.echo("pakus> ", nl=False)
            stream_answer(chat.ask_stream(question, rewritten=rewritten))
        except PakusError as exc:
            click.echo(f"pakus: error: {exc}", err=True)
        except KeyboardInterrupt:
            click.echo("\n(answer stopped)")


# --- `pakus eval` -------------------------------------------------------------------------------


def _fmt(value: Any, pattern: str = "{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def _short(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def format_report(report: dict[str, Any]) -> str:
    """`pakus eval`'s plain-text report (see evaluation.py): overall figures, then one line per question."""
    r, a, c, t = report["retrieval"], report["answers"], report["citations"], report["latency"]
    pct = "{:.0%}"
    lines = [
        f"backend: {report.get('backend') or '-'}   model: {report.get('model') or '-'}   k: {report.get('k') or '-'}",
        "",
        f"retrieval   recall@1 {_fmt(r['recall_at_1'], pct)}   recall@5 {_fmt(r['recall_at_5'], pct)}"
        f"   MRR {_fmt(r['mrr'])}",
        f"answers     accuracy {_fmt(a['accuracy'], pct)} ({a['correct']}/{a['answerable']})"
        f"   unanswerable declined {_fmt(a['declined_unanswerable'], pct)} (of {a['unanswerable']})"
        f"   wrongly declined {a['wrongly_declined']}",
        f"citations   supported {_fmt(c['supported'], pct)} (of {c['count']})"
        f"   on evidence {_fmt(c['on_evidence'], pct)} of answerable",
        f"latency     first token p50 {_fmt(t['first_token_p50'])} s  p95 {_fmt(t['first_token_p95'])} s"
        f"   total p50 {_fmt(t['total_p50'])} s  p95 {_fmt(t['total_p95'])} s"
        f"   retrieval p50 {_fmt(t['retrieval_p50'], '{:.3f}')} s",
        f"errors      {report['errors']}",
        "",
        f"{'id':<8} {'':<4} {'rank':>4} {'ttft':>6} {'total':>6}  answer",
    ]
    for q in report["questions"]:
        status = "ok" if q["correct"] and q["error"] is None else "FAIL"
        if q["error"] is not None:
            shown = "ERROR " + q["error"]
        elif not q["answered"]:
            shown = f"(declined{': ' + q['decline_reason'] if q['decline_reason'] else ''})"
        else:
            shown = q["answer"]
        rank = "-" if q["evidence_rank"] is None else str(q["evidence_rank"])
        if not q["answerable"]:
            rank = "n/a"
        lines.append(
            f"{q['id']:<8} {status:<4} {rank:>4} {_fmt(q['timings'].get('first_token'), '{:.1f}'):>6}"
            f" {_fmt(q['timings'].get('total'), '{:.1f}'):>6}  {_short(shown, 70)}"
        )
    return "\n".join(lines)


# --- collections ---------------------------------------------------------------------------------


def report_line(report) -> str:
    """One file's outcome of add/sync/remove, as it happens."""
    line = report.line()
    if report.failed:
        return click.style(line, fg="red")
    return line


def summary_line(reports, collection: str, seconds: float) -> str:
    counts: dict[str, int] = {}
    for report in reports:
        key = "failed" if report.failed else report.status
        counts[key] = counts.get(key, 0) + 1
    order = ("added", "updated", "unchanged", "removed", "skipped", "failed")
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)] or ["nothing to do"]
    return f"collection {collection!r}: {', '.join(parts)} in {seconds:.1f} s"


def print_reports(reports, collection: str, seconds: float, *, quiet_unchanged: bool = True) -> None:
    for report in reports:
        if not (quiet_unchanged and report.status == "unchanged"):
            click.echo(report_line(report))
    click.echo(summary_line(reports, collection, seconds))


def print_status(status: dict[str, Any]) -> None:
    click.echo(f"collection: {status['collection']}")
    click.echo(f"index:      {status['index_dir']}")
    refresh = f"  (run: {status['refresh']})" if status.get("refresh") else ""
    click.echo(f"state:      {status['state']}{refresh}")
    if status.get("problem"):
        click.echo(f"problem:    {status['problem']}")
    for reason in status.get("stale_reasons", []):
        click.echo(f"  - {reason}")
    if "chunks" in status:
        shown = ", ".join(status["sources"][:5]) + (f", ... ({len(status['sources']) - 5} more)" if len(status["sources"]) > 5 else "")
        click.echo(f"documents:  {status['documents']}  ({shown})")
        click.echo(f"chunks:     {status['chunks']}")
        click.echo(f"store:      {status['store']}")
        click.echo(f"model:      {status['model']} ({status['dimension']} dimensions)")
        click.echo(f"created at: {status['created_at']}")


def print_documents(records: list[dict[str, Any]], collection: str) -> None:
    if not records:
        click.echo(f"collection {collection!r} has no documents; add some with: pakus add PATH -c {collection}")
        return
    for record in records:
        pages = f", {record['pages']} pages" if record.get("pages") else ""
        click.echo(click.style(record["title"], bold=True))
        click.echo(f"      {record['source']}  ({record['format']}{pages}, {record['chunks']} chunks, added {record['added_at']})")
        for other in record.get("also_at") or []:
            click.echo(f"      also at {other} (same content)")
    click.echo(f"{len(records)} documents in collection {collection!r}")


def print_collections(records: list[dict[str, Any]]) -> None:
    if not records:
        click.echo("no collections yet; create one with: pakus add PATH -c NAME")
        return
    for record in records:
        if record.get("problem"):
            click.echo(f"{record['name']:<20} {click.style('damaged', fg='red')}: {record['problem']}")
            continue
        folder = f"  mirrors {record['folder']}" if record.get("folder") else ""
        click.echo(f"{record['name']:<20} {record['documents']:>6} documents {record['chunks']:>8} chunks  k={record['k']}  {record['store']}{folder}")


# --- `pakus doctor` -----------------------------------------------------------------------------


def print_findings(findings) -> None:
    for finding in findings:
        mark = click.style("ok     ", fg="green") if finding.ok else click.style("PROBLEM", fg="red", bold=True)
        click.echo(f"{mark} {finding.check}: {finding.detail}")
        if not finding.ok and finding.fix:
            click.echo(f"        fix: {finding.fix}")
    problems = sum(not f.ok for f in findings)
    click.echo("all is well" if not problems else f"{problems} problem{'s' if problems > 1 else ''} found")
