"""The seeds in other formats: do PDF, Word and HTML copies answer as well as the originals?

Converts the two seed documents with pandoc (HTML, DOCX) and LibreOffice (PDF, from the DOCX), both
Debian packages (`apt-get install pandoc libreoffice-writer-nogui`), adds each format as its own
collection (`seeds-html`, `seeds-docx`, `seeds-pdf`) and runs `pakus eval` on the seeds question
set against each, printing one table. Uses PAKUS_HOME (set it to a scratch folder).

    python benchmarks/seed_formats.py OUT_FOLDER [--questions tests/data/seeds_qa.jsonl] [--skip-eval]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
FORMATS = ("html", "docx", "pdf")


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, text=True, capture_output=True, **kwargs)


def convert(out: Path) -> dict[str, Path]:
    for tool in ("pandoc", "soffice"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install pandoc libreoffice-writer-nogui")
    folders = {fmt: out / fmt for fmt in FORMATS}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for source in sorted(SEEDS.iterdir()):
        if source.suffix not in (".md", ".txt") or source.name.lower() == "readme.md":
            continue
        reader = "markdown"  # the op-ed's plain text reads as Markdown paragraphs too
        title = source.stem.replace("-", " ")
        html = folders["html"] / f"{source.stem}.html"
        run(["pandoc", "-f", reader, "-t", "html5", "--standalone", "--metadata", f"pagetitle={title}", str(source), "-o", str(html)])
        docx = folders["docx"] / f"{source.stem}.docx"
        run(["pandoc", "-f", reader, "-t", "docx", str(source), "-o", str(docx)])
        run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(folders["pdf"]), str(docx)])
    return folders


def evaluate(folders: dict[str, Path], questions: Path) -> dict[str, dict]:
    pakus = [sys.executable, "-m", "rag.cli"]
    results = {}
    for fmt, folder in folders.items():
        collection = f"seeds-{fmt}"
        run([*pakus, "sync", str(folder), "-c", collection, "--json"])
        report = subprocess.run([*pakus, "eval", str(questions), "-c", collection, "--json"], text=True, capture_output=True)
        results[fmt] = json.loads(report.stdout)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--questions", type=Path, default=ROOT / "tests" / "data" / "seeds_qa.jsonl")
    parser.add_argument("--skip-eval", action="store_true")
    args = parser.parse_args()
    folders = convert(args.out)
    if args.skip_eval:
        return
    results = evaluate(folders, args.questions)
    print("| format | correct | unanswerable declined | wrongly declined | citations supported | recall@1 | recall@5 |")
    print("|---|---|---|---|---|---|---|")
    for fmt, report in results.items():
        answers, retrieval, citations = report["answers"], report["retrieval"], report["citations"]
        print(f"| {fmt} | {answers['correct']}/{answers['answerable']} | {answers['declined_unanswerable']:.0%} | {answers['wrongly_declined']} "
              f"| {citations['supported']:.0%} | {retrieval['recall_at_1']:.2f} | {retrieval['recall_at_5']:.2f} |")


if __name__ == "__main__":
    main()
