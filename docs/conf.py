# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Sphinx configuration of tfmxne's documentation.

Build (from the repository root, warnings are errors):

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery (``docs/examples``) runs on the bundled data at build time.
Intersphinx links only to the projects whose inventory is on this machine
(these machines reach no documentation site): SciPy's and Python's from
Debian's ``python-scipy-doc`` and ``python3-doc`` when installed. NumPy and
MNE publish no offline inventory, so their names are plain text.
"""

import os
import sys
from datetime import date
from pathlib import Path

import tfmxne

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))  # build-time helpers (tfmxne_docs)

project = "tfmxne"
author = "The tfmxne developers"
_years = "2026" if date.today().year <= 2026 else f"2026-{date.today().year}"
copyright = f"{_years}, {author}"
release = tfmxne.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx_design",
    "tfmxne_docs",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "examples",  # sphinx-gallery's sources (auto_examples/ holds the pages)
    "hostile_inputs.md",
    "hostile_inputs.py",
    "screenshots.py",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
    "c_api/*.pyx",
    "sg_execution_times.rst",
    # included in differences.rst (docs/_ext/tfmxne_docs.py), not pages of their own
    "differences_*.rst",
    "*irtf*.rst",
]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "py:obj"
nitpicky = False  # NumPy and MNE names stay plain text (no offline inventory)

# -- autodoc / autosummary / numpydoc ----------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- intersphinx: offline inventories only -----------------------------------
_INVENTORIES = {
    "scipy": (
        "https://docs.scipy.org/doc/scipy/",
        "/usr/share/doc/python-scipy-doc/html/objects.inv",
    ),
    "python": ("https://docs.python.org/3/", "/usr/share/doc/python3/html/objects.inv"),
}
intersphinx_mapping = {
    name: (url, path)
    for name, (url, path) in _INVENTORIES.items()
    if os.path.isfile(path)
}
intersphinx_disabled_reftypes = ["*"]  # explicit prefixes only, e.g. :py:func:`scipy.x`

# -- sphinx-gallery ------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "doc_module": ("tfmxne",),
    "backreferences_dir": "generated/backreferences",
    "image_scrapers": ("matplotlib",),
    "plot_gallery": "True",
    "abort_on_example_error": True,
    "min_reported_time": 1,
}

# -- HTML ------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"tfmxne {release}"
html_static_path = ["_static"]
html_css_files = ["tfmxne.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "header_links_before_dropdown": 5,
    # the examples' code needs the width: no "on this page" column there
    "secondary_sidebar_items": {
        "*": ["page-toc"],
        "generated/*": ["page-toc"],
        "auto_examples/*": [],
    },
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# top-level pages have no section navigation: the width goes to their text and code
html_sidebars = {"*": []}
html_show_sourcelink = False
html_context = {"default_mode": "light"}
