"""The HTML repr of the estimators (Jupyter's display) and the input tags."""

import re
from pathlib import Path

import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_html_repr, get_tags

from sklearn_afm import AFMClassifier, AFMRegressor
from sklearn_afm._base import DOCS_URL

REPO_ROOT = Path(__file__).resolve().parents[1]


def _api_pages():
    """The pages that docs/api.rst's autosummary generates, by name."""
    api = (REPO_ROOT / "docs" / "api.rst").read_text()
    module = re.search(r"\.\. currentmodule:: (\S+)", api).group(1)
    return {f"{module}.{name}" for name in re.findall(r"^   (\S+)$", api, flags=re.MULTILINE)}


@pytest.mark.parametrize("Estimator", [AFMClassifier, AFMRegressor])
def test_doc_link_is_the_estimators_api_page(Estimator):
    link = Estimator()._get_doc_link()
    page = f"sklearn_afm.{Estimator.__name__}"
    assert link == f"{DOCS_URL}generated/{page}.html"
    assert page in _api_pages()


def test_docs_url_is_the_projects_documentation_url():
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert re.search(r'^Documentation = "(.*)"$', pyproject, flags=re.MULTILINE)[1] == DOCS_URL


def test_html_repr_links_the_estimator_and_its_parameters():
    clf = AFMClassifier(max_iter=5)
    html = estimator_html_repr(make_pipeline(StandardScaler(), clf))
    link = clf._get_doc_link()
    # The "?" of the estimator's box, and its changed parameter's row.
    assert f'href="{link}"' in html
    assert f'href="{link}#:~:text=max_iter' in html


@pytest.mark.parametrize("Estimator", [AFMClassifier, AFMRegressor])
def test_input_tags(Estimator):
    tags = get_tags(Estimator()).input_tags
    assert tags.sparse and tags.string
    assert not (tags.categorical or tags.allow_nan)
