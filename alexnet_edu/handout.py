"""Student handouts: the book's notebooks with every solution taken out and every output cleared.

A chapter writes each solution between two sphinx-exercise fences in its markdown,
```` ```{solution-start} label ```` and ```` ```{solution-end} ````; the code cells between them are
the solution's code. One markdown cell can hold the end of one solution, the next exercise and the
start of its solution, so the cut is made inside the text of a cell, not only between cells.
Jupyter shows an ```` ```{exercise} ```` fence as a code block, its maths untypeset, so a handout
turns each into a plain paragraph, "**Exercise 2** (`label`)", followed by its text.

    alexnet-edu handout --out handouts book/*.ipynb
"""

from __future__ import annotations

import copy
import itertools
import re

import nbformat

__all__ = ["without_solutions", "count_solutions"]

START = re.compile(r"```\{solution-start\}[ \t]*(\S*)[^\n]*\n(?::[^\n]*\n)*```")   # label, :options:
END = re.compile(r"```\{solution-end\}\s*```")
EXERCISE = re.compile(r"```\{exercise\}[^\n]*\n((?::[^\n]*\n)*)\n?(.*?)\n```", re.S)   # options, text


def count_solutions(nb: nbformat.NotebookNode) -> int:
    return sum(len(START.findall(cell.source)) for cell in nb.cells if cell.cell_type == "markdown")


def without_solutions(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` for students: exercises kept; solution text and code taken out, an empty
    code cell left where a solution had code; no outputs."""
    handout = copy.deepcopy(nb)
    handout.cells = []
    label, solution_has_code = None, False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            if label is None:
                handout.cells.append(_cleared(cell))
            else:
                solution_has_code |= cell.cell_type == "code"
            continue
        kept, text, part = [], cell.source, 0
        while True:
            fence = (START if label is None else END).search(text)
            if fence is None:
                if label is None:
                    kept.append(text)
                break
            if label is None:
                kept.append(text[: fence.start()])
                label = fence.group(1) or "solution"
            else:
                if solution_has_code:   # the markdown so far, then room for the student's code
                    part = _append_markdown(handout, cell, kept, part)
                    kept = []
                    handout.cells.append(nbformat.v4.new_code_cell(f"# {label}: your answer", id=f"answer-{label}"))
                label, solution_has_code = None, False
            text = text[fence.end() :]
        _append_markdown(handout, cell, kept, part)
    if label is not None:
        raise ValueError(f"the notebook ends inside the solution of {label!r}: it has no solution-end")
    number = itertools.count(1)
    for cell in handout.cells:
        if cell.cell_type == "markdown":
            cell.source = EXERCISE.sub(lambda fence: _plain_exercise(fence, next(number)), cell.source)
    return handout


def _plain_exercise(fence: re.Match, number: int) -> str:
    """An exercise directive as Jupyter can show it: a bold heading with its label, then its text."""
    options, text = fence.groups()
    label = re.search(r":label:\s*(\S+)", options)
    return f"**Exercise {number}**" + (f" (`{label.group(1)}`)" if label else "") + f"\n\n{text.strip()}"


def _append_markdown(handout, cell, texts: list[str], part: int) -> int:
    """Append what is kept of a markdown cell (a second part gets an id of its own); the next part."""
    source = "".join(texts).strip()
    if END.search(source):
        raise ValueError(f"a solution-end without a solution-start in: {source[:200]!r}")
    if source:
        kept = copy.deepcopy(cell)
        kept.source = source
        if part:
            kept.id = f"{cell.id}-{part}"
        handout.cells.append(kept)
        return part + 1
    return part


def _cleared(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell
