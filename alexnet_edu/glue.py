"""Numbers the chapters' prose quotes from their own outputs.

A sentence such as "LRN changed test accuracy by {glue:text}`lrn_change:+.2f` points" reads its
number from the page's last execution, so re-running a chapter cannot leave its prose behind. This
is myst-nb's ``glue`` (https://myst-nb.readthedocs.io/en/latest/render/glue.html), which the
website build installs. Where myst-nb is not installed (Colab, a laptop with only the package), the
prose shows the role itself, ``{glue:text}`lrn_change:+.2f```, so ``glue`` prints the value under
its name instead, in the output of the cell that computed it.
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
    else:
        print(f"{name} = {value}")   # what the text's {glue:text}`{name}` stands for
