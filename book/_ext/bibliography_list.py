"""The bibliography as a valid ARIA list.

docutils (0.21) writes each citation as `<div role="doc-biblioentry">` inside a
`<div role="list">`. DPUB-ARIA 1.1 deprecates `doc-biblioentry`, and a list must hold list items,
so axe-core reports two WCAG violations on the bibliography page (aria-deprecated-role,
aria-required-children). Here each citation is a `listitem` of that list instead.
"""

from docutils import nodes


def visit_citation(self, node):
    if not isinstance(node.previous_sibling(), type(node)):
        self.body.append('<div role="list" class="citation-list">\n')
    self.body.append(self.starttag(node, "div", classes=[node.tagname], role="listitem"))


def depart_citation(self, node):
    self.body.append("</div>\n")
    if not isinstance(node.next_node(descend=False, siblings=True), type(node)):
        self.body.append("</div>\n")


def setup(app):
    app.add_node(nodes.citation, override=True, html=(visit_citation, depart_citation))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
