"""Sphinx HTML math renderer writing MathML at build time.

Sphinx's default renderer, MathJax, leaves the LaTeX source in the page and
loads a script from a CDN to typeset it, so pages read offline (a downloaded
build, a machine without network) show raw LaTeX.  MathML is rendered by the
browsers themselves (MathML Core), and docutils converts LaTeX to it in pure
Python, so the built pages need neither a script nor a network, nor LaTeX on
the machine that builds them (as ``sphinx.ext.imgmath`` would).

docutils knows a subset of LaTeX (no ``\\big``, ``\\texttt``: use ``\\left(``
and ``\\mathtt``); a formula outside it is a build warning, so an error
under ``-W``, naming the command.
"""

from docutils import nodes
from docutils.utils.math import MathError, latex2mathml
from sphinx.locale import _
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

logger = logging.getLogger(__name__)


def to_mathml(latex, block):
    """Return the MathML of ``latex``; raises docutils' MathError outside its LaTeX subset."""
    return latex2mathml.tex2mathml(latex, as_block=block)


def _convert(translator, node, latex, block):
    try:
        return to_mathml(latex, block)
    except MathError as error:
        logger.warning("cannot render math %r as MathML: %s", latex, error, location=node)
        return translator.encode(latex)


def visit_math(translator, node):
    translator.body.append(translator.starttag(node, "span", "", CLASS="math notranslate"))
    translator.body.append(_convert(translator, node, node.astext(), block=False))
    translator.body.append("</span>")
    raise nodes.SkipNode


def visit_math_block(translator, node):
    translator.body.append(translator.starttag(node, "div", CLASS="math notranslate"))
    if node["number"]:
        number = get_node_equation_number(translator, node)
        translator.body.append(f'<span class="eqno">({number})')
        translator.add_permalink_ref(node, _("Link to this equation"))
        translator.body.append("</span>")
    # Paragraphs of a math directive are separate equations (as in MathJax's
    # renderer, which aligns them one under the other).
    for part in node.astext().split("\n\n"):
        if part.strip():
            translator.body.append(_convert(translator, node, part, block=True))
    translator.body.append("</div>\n")
    raise nodes.SkipNode


def setup(app):
    app.add_html_math_renderer(
        "mathml", inline_renderers=(visit_math, None), block_renderers=(visit_math_block, None)
    )
    return {"parallel_read_safe": True, "parallel_write_safe": True}
