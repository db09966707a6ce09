"""How much of an HTML page's own content reaches the indexed text?

For every page of a folder that marks its main content (<main> or role="main"), counts the
paragraphs (<p>, <dd>, <li> and <div> text of 30 characters or more) inside that element whose
text is missing from the converted document, with trafilatura's extraction alone and with the
converter's recovery of dropped blocks (rag/converters/_main_content.py). Letters and digits are
compared, so spacing and Markdown marks do not count as losses.

    python benchmarks/html_coverage.py FOLDER [--show N]

(FOLDER: for instance the pydocs corpus of `benchmarks/corpora.py`.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from unittest import mock

from _common import ROOT  # noqa: F401 - puts the checkout on the path

from rag.converters import _main_content
from rag.converters.html import CONVERTER


def paragraphs(path: Path) -> list[str]:
    import lxml.html

    tree = lxml.html.document_fromstring(path.read_bytes())
    main = next(iter(tree.xpath("//main | //*[@role='main']")), None)
    if main is None:
        return []
    return [text for tag, text in _main_content.text_blocks(main) if tag in ("p", "dd", "li", "div") and len(text) >= 30]


def missing(path: Path, texts: list[str]) -> list[str]:
    document = _main_content.letters_only(CONVERTER.convert(path, path.name).text)
    return [text for text in texts if _main_content.letters_only(text) not in document]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--show", type=int, default=0, help="print this many missing paragraphs per page")
    args = parser.parse_args(argv)
    totals = {"paragraphs": 0, "trafilatura alone": 0, "with recovery": 0}
    print(f"{'page':40} {'paragraphs':>10} {'missing, trafilatura alone':>27} {'missing, with recovery':>23}")
    for path in sorted(args.folder.rglob("*.htm*")):
        texts = paragraphs(path)
        if not texts:
            continue
        with mock.patch.object(_main_content, "recover_main_content", lambda markdown, tree, escape: markdown), \
                mock.patch("rag.converters.html.recover_main_content", lambda markdown, tree, escape: markdown):
            alone = missing(path, texts)
        recovered = missing(path, texts)
        totals["paragraphs"] += len(texts)
        totals["trafilatura alone"] += len(alone)
        totals["with recovery"] += len(recovered)
        print(f"{str(path.relative_to(args.folder)):40} {len(texts):>10} {len(alone):>27} {len(recovered):>23}")
        for text in alone[:args.show]:
            print("    lost by trafilatura:", text[:120])
    print(f"{'total':40} {totals['paragraphs']:>10} {totals['trafilatura alone']:>27} {totals['with recovery']:>23}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
