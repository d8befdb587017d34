"""Sphinx configuration of the sklearn-afm documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (the
``docs`` extra installs what it needs).  No extension fetches anything from
the network; the gallery's MovieLens example downloads its data (2 MB, once,
into sklearn_afm's data cache: ``fetch_movielens_100k``), so a build offline
needs that cache filled (or ``SKLEARN_AFM_DATA`` pointing to a copy).
"""

import os
import sys
from pathlib import Path

# Document the working tree even where an older copy is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The extensions of this documentation (docs/_ext).
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

import sklearn_afm  # noqa: E402

# The gallery runs the examples; no window may open while it does.
os.environ.setdefault("MPLBACKEND", "Agg")

project = "sklearn-afm"
author = "sklearn-afm developers"
copyright = "sklearn-afm developers"
release = version = sklearn_afm.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "mathml_math",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build"]

# Formulas are written as MathML at build time, which browsers render without
# a script: MathJax (Sphinx's default) would load from a CDN and leave raw
# LaTeX in pages read offline.
html_math_renderer = "mathml"
templates_path = ["_templates"]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}

# numpydoc renders the Parameters/Attributes sections; autosummary would list
# every member a second time.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Run every example (all are named plot_*.py and train for seconds).
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
}

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-afm {version}"
html_theme_options = {"navigation_with_keys": False}


def _skip_scikit_learn_members(app, what, name, obj, skip, options):
    """Leave out the members inherited from scikit-learn (get_params, score, ...).

    They are documented by scikit-learn, and their docstrings refer to labels
    of its documentation that do not exist here.
    """
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and not module.startswith("sklearn_afm"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_scikit_learn_members)
