"""Student handouts: every chapter without its solutions, checked on the real chapters and on a
small notebook whose markers share cells with exercises, as the chapters' do."""

import re
from pathlib import Path

import nbformat
import pytest

from alexnet_edu.cli import main
from conftest import solution_of_each_code_cell
from alexnet_edu.handout import count_solutions, without_solutions

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("*.ipynb"))

md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell


def solution_code(nb):
    """Per solution, the sources of its code cells."""
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    solutions = solution_of_each_code_cell([(cell.cell_type, cell.source) for cell in nb.cells])
    found = [[] for _ in range(count_solutions(nb))]
    for text, solution in zip(code, solutions):
        if solution is not None:
            found[solution].append(text)
    return found


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_a_handout_keeps_the_exercises_and_the_chapter_but_no_solution(chapter):
    nb = nbformat.read(chapter, as_version=4)
    handout = without_solutions(nb)
    nbformat.validate(handout)
    text = "\n".join(cell.source for cell in handout.cells)
    assert "{solution-" not in text and ":class: dropdown" not in text     # no fence, no folded block
    labels = re.findall(r"```\{exercise\}\n:label: (\S+)", "\n".join(c.source for c in nb.cells))
    assert re.findall(r"\*\*Exercise (\d+)\*\* \(`(\S+)`\)", text) == [
        (str(n), label) for n, label in enumerate(labels, 1)]                # every exercise, in order
    assert "```{exercise}" not in text and ":label:" not in text             # as Jupyter can show them
    markdown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    assert count_solutions(nb) == markdown.count("{solution-start}") == markdown.count("{solution-end}")
    per_solution = solution_code(nb)
    hidden = [source for solution in per_solution for source in solution]
    kept_code = [c.source for c in handout.cells if c.cell_type == "code"]
    assert not set(hidden) & set(kept_code)
    answers = [c for c in handout.cells if c.cell_type == "code" and c.id.startswith("answer-")]
    assert len(answers) == sum(1 for solution in per_solution if solution)   # one where code was
    chapter_code = [c.source for c in nb.cells if c.cell_type == "code" and c.source not in hidden]
    assert [c.source for c in handout.cells if c.cell_type == "code" and c not in answers] == chapter_code
    assert all(c.outputs == [] and c.execution_count is None for c in handout.cells if c.cell_type == "code")
    # nothing a student runs comes after an answer cell, so nothing depends on a removed solution
    first = next(i for i, c in enumerate(handout.cells) if c in answers)
    assert all(c in answers for c in handout.cells[first:] if c.cell_type == "code")


def test_markers_inside_shared_cells_cut_only_the_solution():
    nb = nbformat.v4.new_notebook(cells=[
        md("## Exercises\n\n```{exercise}\n:label: one\n\nFirst question.\n```\n\n"
           "```{solution-start} one\n:class: dropdown\n```\n\nThe first answer, in words."),
        code("answer_one = 42"),
        md("```{solution-end}\n```\n\n```{exercise}\n:label: two\n\nSecond question.\n```\n\n"
           "```{solution-start} two\n:class: dropdown\n```\n\nIn words only."),
        md("```{solution-end}\n```\n\nAfter the exercises."),
    ])
    handout = without_solutions(nb)
    assert [(c.cell_type, c.source) for c in handout.cells] == [
        ("markdown", "## Exercises\n\n**Exercise 1** (`one`)\n\nFirst question."),
        ("code", "# one: your answer"),
        ("markdown", "**Exercise 2** (`two`)\n\nSecond question."),
        ("markdown", "After the exercises."),
    ]
    assert len({c.id for c in handout.cells}) == 4
    assert count_solutions(nb) == 2


@pytest.mark.parametrize("cells, message", [
    ([md("```{solution-start} one\n:class: dropdown\n```\n\nno end")], "no solution-end"),
    ([md("```{solution-end}\n```")], "without a solution-start"),
])
def test_unbalanced_markers_are_an_error(cells, message):
    with pytest.raises(ValueError, match=message):
        without_solutions(nbformat.v4.new_notebook(cells=cells))


def test_the_command_writes_one_handout_per_chapter(tmp_path, capsys):
    chapters = [BOOK / "relu.ipynb", BOOK / "pooling.ipynb"]
    assert main(["handout", "--out", str(tmp_path), *map(str, chapters)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pooling.ipynb", "relu.ipynb"]
    assert re.search(r"relu.ipynb: 4 solution\(s\) taken out", capsys.readouterr().out)
    relu = nbformat.read(tmp_path / "relu.ipynb", as_version=4)
    assert 'ACTIVATIONS["leaky"]' not in "\n".join(c.source for c in relu.cells)
    with pytest.raises(SystemExit, match="choose another folder"):
        main(["handout", "--out", str(BOOK), str(BOOK / "relu.ipynb")])
