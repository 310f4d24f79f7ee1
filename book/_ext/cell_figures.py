"""One numbered figure per notebook cell, also when the cell shows other outputs.

A code cell's figure gets its caption, label and alternative text the Jupyter Book way, from
myst-nb's cell metadata (`mystnb: figure: {caption, name}` and `mystnb: image: {alt}`). But
myst-nb wraps *every* display output of such a cell in the figure (MyST-NB issue 285): a cell
that trains a network and shows a live plot and ten progress bars becomes eleven numbered figures
and ten "Duplicate explicit target name" warnings. For those cells this extension keeps the
metadata as it is and makes one figure of the first output that holds an image; the other
outputs are shown as they would be without the metadata.
"""

import json

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

HELD_BACK = "figure_name_of_image"   # where the label waits, in the notebook read for the build


def displayed_outputs(cell):
    """The outputs myst-nb renders one by one (glued values with a mime prefix are not shown)."""
    return [o for o in cell.get("outputs", [])
            if o["output_type"] in ("display_data", "execute_result")
            and "mime_prefix" not in o.get("metadata", {}).get("scrapbook", {})]


def hold_back_labels(app, docname, source):
    """Before myst-nb parses a notebook, take the label off multi-output figure cells, so that
    myst-nb does not register it once per output."""
    if not str(app.env.doc2path(docname)).endswith(".ipynb"):
        return
    notebook = json.loads(source[0])
    changed = False
    for cell in notebook["cells"]:
        options = cell.get("metadata", {}).get("mystnb", {})
        if "name" in options.get("figure", {}) and len(displayed_outputs(cell)) > 1:
            options[HELD_BACK] = options["figure"].pop("name")
            changed = True
    if changed:
        source[0] = json.dumps(notebook)


def holds_an_image(figure):
    return any(str(node.get("mime_type", "")).startswith("image/")
               for node in figure.findall(nodes.container))


logger = logging.getLogger(__name__)


class OneFigurePerCell(SphinxTransform):
    default_priority = 200   # before Sphinx numbers the figures (AutoNumbering, 210)

    def apply(self, **kwargs):
        cells = [node for node in self.document.findall(nodes.container)
                 if node.get("nb_element") == "cell_code"
                 and HELD_BACK in node.get("cell_metadata", {}).get("mystnb", {})]
        for cell in cells:
            figures = list(cell.findall(nodes.figure))
            kept = next((figure for figure in figures if holds_an_image(figure)), None)
            if kept is None:   # no image among its outputs (cleared, or drawn as a widget): leave it
                logger.warning(f"a figure cell ({cell['cell_metadata']['mystnb'][HELD_BACK]}) has no image "
                               "output to caption", location=cell)
                continue
            for figure in figures:
                if figure is not kept:
                    figure.replace_self([c for c in figure.children if not isinstance(c, nodes.caption)])
            name = nodes.fully_normalize_name(cell["cell_metadata"]["mystnb"][HELD_BACK])
            kept["names"].append(name)
            self.document.note_explicit_target(kept, kept)


def setup(app):
    app.connect("source-read", hold_back_labels)
    app.add_transform(OneFigurePerCell)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
