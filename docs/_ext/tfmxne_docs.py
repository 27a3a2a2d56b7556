# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Build-time helpers of the documentation.

* The performance page takes its tables from ``benchmarks/README.md`` (the
  latest run is recorded there), converted from Markdown to reST at each build.
* The API page must list every name of ``tfmxne.__all__``: a name missing
  from ``api.rst`` is a build warning (an error with ``-W``).
"""

import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent.parent


def _inline(text):
    """Markdown inline code, bold and links to reST."""
    text = text.replace("\\|", "|")
    text = re.sub(r"`([^`]+)`", r"``\1``", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"**\1**", text)
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1", text)
    return text


def _tables(md):
    """The Markdown tables of ``md``, each as a list of rows of cells."""
    tables, rows = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells)
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def _cell(text):
    """A table cell's text, its start escaped where reST would read a list
    ('(a) surf' an enumerated item, '-' a bullet)."""
    text = _inline(text)
    if re.match(r"^(\(?[a-zA-Z0-9]+[.)]\s|[-*+](\s|$))", text):
        text = "\\" + text
    return text or " "


def _list_table(rows, title):
    out = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in rows:
        for k, cell in enumerate(row):
            out.append(f"   {'* -' if k == 0 else '  -'} {_cell(cell)}")
    return "\n".join(out) + "\n"


def _paragraph_after(md, heading):
    """The first paragraph after a Markdown heading."""
    part = md.split(heading, 1)[1].lstrip("\n")
    return " ".join(part.split("\n\n", 1)[0].split())


def write_benchmark_tables(out):
    md = (ROOT / "benchmarks" / "README.md").read_text()
    results = md.split("## Results", 1)[1].split("\n## ", 1)[0]
    tables = _tables(results)
    text = [
        ".. (generated from benchmarks/README.md at each build: edit that file)",
        "",
        _inline(_paragraph_after(md, "## Results")),
        "",
        _list_table(tables[0], "End to end: MNE's tf_mixed_norm against tfmxne's"),
    ]
    if len(tables) > 1:
        text.append(
            _list_table(
                tables[1], "Time to MNE's accuracy (both solvers on the same arrays)"
            )
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(text))


def check_api_page(app):
    import tfmxne

    api = (Path(app.srcdir) / "api.rst").read_text()
    listed = set(re.findall(r"^   (\w+)$", api, flags=re.MULTILINE))
    for name in tfmxne.__all__:
        if name != "__version__" and name not in listed:
            logger.warning(f"tfmxne.{name} is in tfmxne.__all__ but not in api.rst")


def write_differences_extra(srcdir):
    """Include the texts of other pages on the differences from MNE (such as
    the irTF-MxNE certificate's: ``docs/differences_*.rst``, ``docs/*irtf*.rst``)
    in the differences page, in name order. They are excluded from the build as
    documents of their own (``conf.py``)."""
    found = sorted({p.name for pat in EXTRA_DIFFERENCES for p in Path(srcdir).glob(pat)})
    lines = [".. (generated: the docs/ texts included in differences.rst)", ""]
    lines += [f".. include:: /{name}\n" for name in found]  # (/: the source dir)
    out = Path(srcdir) / "generated" / "differences_extra.rst"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


#: other texts on the differences from MNE, included in differences.rst
EXTRA_DIFFERENCES = ("differences_*.rst", "*irtf*.rst")


def setup(app):
    write_benchmark_tables(Path(app.srcdir) / "generated" / "benchmark_tables.rst")
    write_differences_extra(app.srcdir)
    app.connect("builder-inited", check_api_page)
    return {"parallel_read_safe": True}
