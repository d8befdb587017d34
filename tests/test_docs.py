"""The documentation's formulas read offline: MathML written at build time, no CDN script."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="sphinx (the docs extra) builds the documentation")

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

from mathml_math import to_mathml  # noqa: E402

# The body of a ``.. math::`` directive (its indented lines) or a :math: role.
MATH_BLOCK = re.compile(r"^\.\. math::\n((?:\n|[ \t]+.*\n)+)", re.M)
MATH_ROLE = re.compile(r":math:`([^`]+)`")


def _formulas():
    for page in sorted(DOCS.glob("*.rst")):
        text = page.read_text()
        for block in MATH_BLOCK.findall(text):
            for part in block.split("\n\n"):
                if part.strip():
                    yield page.name, part, True
        for role in MATH_ROLE.findall(text):
            yield page.name, role, False


FORMULAS = list(_formulas())


def test_docs_have_formulas():
    assert len(FORMULAS) >= 5


@pytest.mark.parametrize(
    "page, latex, block", FORMULAS, ids=[f"{page}-{i}" for i, (page, *_) in enumerate(FORMULAS)]
)
def test_every_formula_of_the_docs_converts_to_mathml(page, latex, block):
    assert to_mathml(latex, block).startswith("<math")


def test_built_pages_show_formulas_without_a_script_from_the_network(tmp_path):
    # The documentation's own configuration, without the gallery (which runs
    # the examples), on a page with the user guide's kinds of formulas.
    (tmp_path / "conf.py").write_text(
        f"__file__ = {str(DOCS / 'conf.py')!r}\n"
        "exec(compile(open(__file__).read(), __file__, 'exec'))\n"
        "extensions.remove('sphinx_gallery.gen_gallery')\n"
        "autosummary_generate = False\n"
    )
    (tmp_path / "index.rst").write_text(
        "Formulas\n========\n\n"
        "Inline :math:`\\mathcal{X} = \\{i : x_i \\neq 0\\}` and a block:\n\n"
        ".. math::\n\n"
        "   a_{ij} = \\frac{\\exp a'_{ij}}{\\sum_{s < t \\in \\mathcal{X}} \\exp a'_{st}}\n"
    )
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(tmp_path), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    page = (out / "index.html").read_text()
    assert page.count("<math") == 2
    assert "\\frac" not in page
    for html in out.rglob("*.html"):
        scripts = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", html.read_text())
        remote = [src for src in scripts if re.match(r"(https?:)?//", src)]
        assert not remote, (html.name, remote)
