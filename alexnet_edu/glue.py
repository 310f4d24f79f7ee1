"""Numbers the chapters' prose quotes from their own outputs.

A sentence such as "LRN changed test accuracy by {glue:text}`lrn_change:+.2f` points" reads its
number from the page's last execution, so re-running a chapter cannot leave its prose behind. This
is myst-nb's ``glue`` (https://myst-nb.readthedocs.io/en/latest/render/glue.html), which the
website build installs. Where myst-nb is not installed (Colab, a laptop with only the package),
``glue`` does nothing: the glued values only matter to the website, and a student sees the same
numbers in the cell outputs above the sentence.
"""

from __future__ import annotations

try:
    from myst_nb import glue as _myst_nb_glue
except ImportError:          # no website build here
    _myst_nb_glue = None

__all__ = ["glue"]


def glue(name: str, value) -> None:
    """Store ``value`` under ``name`` for the chapter's prose, without showing it in the output."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"glue name {name!r}: use letters, digits and underscores")
    if _myst_nb_glue is not None:
        _myst_nb_glue(name, value, display=False)
