"""Graded assignments from the book's chapters, for otter-grader.

A chapter's grading lives in one file, ``alexnet_edu/assignments/CHAPTER.yml``: per exercise label,
the names its answer is stored as, the student's answer stub, public tests (types, shapes), hidden
tests (values, recomputed from the student's own objects where they can be), autograded points and
points for a written part graded by hand. Keeping it out of the notebooks leaves the chapters' code
cells, and so the outputs saved with them, untouched. From it and a chapter this module writes

    OUT/student/CHAPTER.ipynb     answer stubs, Markdown answer cells, grader.check cells, no solution
    OUT/student/tests/LABEL.py    the public tests, for grader.check
    OUT/autograder/CHAPTER-autograder.zip   otter's autograder: every test, this package pinned,
                                  the smoke profile (alexnet_edu.otter_plugin)
    OUT/solutions/CHAPTER.ipynb   the chapter with its solutions and grader.check cells
    OUT/solutions/tests/LABEL.py  every test

The tests are otter's exception-based test files; otter runs them and writes the grades.

    alexnet-edu assignment architecture --out assignments/architecture
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from .handout import END, START, without_solutions

GRADING = Path(__file__).parent / "assignments"
PLUGIN = "alexnet_edu.otter_plugin.SmokeProfile"
INIT = 'import otter\ngrader = otter.Notebook(tests_dir="tests")'
HEADING = re.compile(r"\*\*Exercise \d+\*\* \(`(\S+)`\)")   # an exercise, as a handout writes it
EXPORT = ("# Save the notebook first; this writes a zip of it to hand in.\n"
          "grader.export(pdf=False)")


@dataclass
class Exercise:
    label: str
    points: float = 0            # autograded by otter
    manual: float = 0            # a written answer, graded by hand
    store: list[str] = field(default_factory=list)
    stub: str = ""
    written: str | None = None
    public: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)

    @property
    def graded_by_otter(self) -> bool:
        return bool(self.public or self.hidden)


@dataclass
class Grading:
    chapter: str
    total: float
    exercises: dict[str, Exercise]

    def select(self, labels: list[str] | None) -> "Grading":
        if not labels:
            return self
        unknown = sorted(set(labels) - set(self.exercises))
        if unknown:
            raise ValueError(f"no exercise {', '.join(unknown)} in {self.chapter}; it has {', '.join(self.exercises)}")
        chosen = {label: ex for label, ex in self.exercises.items() if label in labels}
        return Grading(self.chapter, sum(e.points + e.manual for e in chosen.values()), chosen)


def chapters() -> list[str]:
    """The chapters that have a grading file."""
    return sorted(path.stem for path in GRADING.glob("*.yml"))


def load_grading(chapter: str) -> Grading:
    path = GRADING / f"{chapter}.yml"
    if not path.exists():
        raise ValueError(f"no grading for {chapter!r}; chapters with one: {', '.join(chapters())}")
    spec = yaml.safe_load(path.read_text())
    exercises = {label: Exercise(label, **fields) for label, fields in spec["exercises"].items()}
    return Grading(spec["chapter"], spec["total"], exercises)


# -- otter's test files ---------------------------------------------------------------------------

def otter_test_file(exercise: Exercise, hidden: bool) -> str:
    """An otter exception-based test file: all or nothing, ``points`` for the exercise."""
    lines = ["from otter.test_files import test_case", "", "OK_FORMAT = False", "",
             f"name = {exercise.label!r}", f"points = {exercise.points!r}", "all_or_nothing = True", ""]
    cases = [(test, False) for test in exercise.public] + [(test, True) for test in exercise.hidden if hidden]
    for test, is_hidden in cases:
        lines += ["", f"@test_case(hidden={is_hidden})", test.rstrip(), ""]
    return "\n".join(lines)


def hidden_score(exercise: Exercise, namespace: dict) -> float:
    """The points ``exercise``'s tests, hidden ones included, give the answers in ``namespace`` (a
    notebook's globals), run as otter runs them."""
    from otter.test_files import ExceptionTestFile

    tests = ExceptionTestFile.from_string(otter_test_file(exercise, hidden=True), path=f"{exercise.label}.py")
    tests.run(namespace)
    return tests.score


def write_tests(grading: Grading, folder: Path, hidden: bool) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for exercise in grading.exercises.values():
        if exercise.graded_by_otter:
            path = folder / f"{exercise.label}.py"
            path.write_text(otter_test_file(exercise, hidden))
            written.append(path)
    return written


# -- notebooks ------------------------------------------------------------------------------------

def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """No outputs, widget state, execution timestamps or execution stamp."""
    nb = copy.deepcopy(nb)
    for key in ("widgets", "alexnet_edu"):
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("widgets", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def code(source: str, cell_id: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, id=cell_id)


def markdown(source: str, cell_id: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(source, id=cell_id)


def with_grader(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """otter's grader after the setup cell, the export cell at the end. In Colab the setup cell also
    installs otter-grader (the ``grade`` extra), which ``import otter`` needs."""
    setup = next(c for c in nb.cells if c.cell_type == "code")
    setup.source = setup.source.replace('"alexnet-edu[d2l] @ {url}"', '"alexnet-edu[d2l,grade] @ {url}"')
    nb.cells.insert(2, code(INIT, "otter-init"))
    nb.cells.append(markdown("## Hand in\n\nRun every cell from the top, save, then run the cell below.",
                             "otter-export-text"))
    nb.cells.append(code(EXPORT, "otter-export"))
    return nb


def student_notebook(nb: nbformat.NotebookNode, grading: Grading) -> nbformat.NotebookNode:
    """The chapter without solutions; after each exercise of ``grading``, its answer stub, a
    ``grader.check`` cell and a Markdown answer cell for its written part. Other exercises stay as in
    a handout."""
    student = clean(without_solutions(nb))
    cells = []
    for cell in student.cells:
        label = cell.get("id", "").removeprefix("answer-")
        if cell.get("id", "").startswith("answer-") and label in grading.exercises \
                and grading.exercises[label].graded_by_otter:
            continue                      # the handout's empty answer cell: replaced by the stub
        if cell.cell_type != "markdown" or not HEADING.search(cell.source):
            cells.append(cell)
            continue
        starts = [m.start() for m in HEADING.finditer(cell.source)]
        for part, (a, b) in enumerate(zip([0, *starts], [*starts, None])):
            text = cell.source[a:b].strip()
            if not text:
                continue
            piece = copy.deepcopy(cell)
            piece.source, piece.id = text, cell.id if part == 0 else f"{cell.id}-x{part}"
            cells.append(piece)
            heading = HEADING.match(text)
            if heading and heading.group(1) in grading.exercises:
                cells += _answer_cells(grading.exercises[heading.group(1)])
    for i in range(len(cells) - 1):   # a written answer after the code cell of its exercise
        if cells[i].id.startswith("written-") and cells[i + 1].id == "answer-" + cells[i].id[8:]:
            cells[i], cells[i + 1] = cells[i + 1], cells[i]
    student.cells = cells
    return with_grader(student)


def _answer_cells(exercise: Exercise) -> list:
    cells = []
    if exercise.graded_by_otter:
        cells.append(code(exercise.stub.rstrip(), f"stub-{exercise.label}"))
        cells.append(code(f'grader.check("{exercise.label}")', f"check-{exercise.label}"))
    if exercise.written:
        cells.append(markdown(f"**Your answer** (`{exercise.label}`, graded by hand): {exercise.written}\n\n"
                              "_Type your answer here._", f"written-{exercise.label}"))
    return cells


def solutions_notebook(nb: nbformat.NotebookNode, grading: Grading) -> nbformat.NotebookNode:
    """The chapter with its solutions, a ``grader.check`` cell after each graded solution's code."""
    solutions = clean(nb)
    cells, label, last_code = [], None, None
    for cell in solutions.cells:
        if cell.cell_type == "markdown":
            for marker in re.finditer(f"{START.pattern}|{END.pattern}", cell.source):
                if marker.group(0).startswith("```{solution-start}"):
                    label, last_code = marker.group(1), None
                else:
                    if label in grading.exercises and grading.exercises[label].graded_by_otter:
                        if last_code is None:
                            raise ValueError(f"{label} is graded by tests but its solution has no code")
                        cells.insert(last_code + 1, code(f'grader.check("{label}")', f"check-{label}"))
                    label = None
        cells.append(cell)
        if cell.cell_type == "code" and label is not None:
            last_code = len(cells) - 1
    solutions.cells = cells
    return with_grader(solutions)


# -- the autograder -------------------------------------------------------------------------------

def pinned_requirement() -> str:
    """This package at the commit it was installed from (or this checkout's HEAD), else its version."""
    import subprocess
    from importlib.metadata import version

    from .reference import installed_from_github

    source = installed_from_github()
    if source is None:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip()
        source = ("alexnet-edu/alexnet-edu", head)
    repo, commit = source
    if re.fullmatch(r"[0-9a-f]{40}", commit or ""):
        return f"alexnet-edu[grade] @ git+https://github.com/{repo}@{commit}"
    return f"alexnet-edu[grade]=={version('alexnet-edu')}"


def autograder_zip(grading: Grading, path: Path) -> Path:
    """otter generate's zip: every test, this package pinned, grading in the smoke profile."""
    from otter.generate import main as otter_generate

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_tests(grading, tmp / "tests", hidden=True)
        (tmp / "requirements.txt").write_text(pinned_requirement() + "\n")
        config = {"plugins": [PLUGIN], "zips": False, "pdf": False,
                  "points_possible": sum(e.points for e in grading.exercises.values())}
        (tmp / "otter_config.json").write_text(json.dumps(config, indent=2))
        otter_generate(tests_dir=str(tmp / "tests"), output_path=str(path.resolve()),
                       config=str(tmp / "otter_config.json"), requirements=str(tmp / "requirements.txt"),
                       no_environment=True, lang="python")
    return path


def write_assignment(chapter: Path, out: Path, labels: list[str] | None = None) -> dict[str, Path]:
    """The student folder, the autograder zip and the solutions folder for ``chapter``."""
    grading = load_grading(chapter.stem).select(labels)
    nb = nbformat.read(chapter, as_version=4)
    for folder in ("student", "autograder", "solutions"):   # what an earlier run wrote here; nothing else
        shutil.rmtree(out / folder, ignore_errors=True)
    paths = {"student": out / "student" / chapter.name, "solutions": out / "solutions" / chapter.name,
             "autograder": out / "autograder" / f"{chapter.stem}-autograder.zip"}
    for which, notebook, hidden in (("student", student_notebook(nb, grading), False),
                                    ("solutions", solutions_notebook(nb, grading), True)):
        paths[which].parent.mkdir(parents=True)
        nbformat.validate(notebook)
        nbformat.write(notebook, paths[which])
        write_tests(grading, paths[which].parent / "tests", hidden=hidden)
    autograder_zip(grading, paths["autograder"])
    return paths


def grade_folder(autograder: Path, submissions: list[Path], out: Path, jobs: int = 1):
    """Grade each submission with ``otter run`` (no Docker; the packages must be installed here) and
    write otter's grade table, ``final_grades.csv``, to ``out``; the table. With ``jobs`` > 1,
    that many submissions are graded at once, each with its share of the CPU cores."""
    from otter.grade.utils import merge_scores_to_df

    if jobs < 1:
        raise ValueError(f"jobs={jobs}: grade at least one submission at a time")
    out.mkdir(parents=True, exist_ok=True)
    work = [(str(submission), str(autograder)) for submission in submissions]
    jobs = min(jobs, len(work))
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, cores // jobs)
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"),
                                 initializer=_use_threads, initargs=(threads,)) as pool:
            scores = list(pool.map(_grade_one, *zip(*work)))
    else:
        scores = [_grade_one(*args) for args in work]
    table = merge_scores_to_df(scores)
    table.to_csv(out / "final_grades.csv", index=False)
    return table


def _use_threads(threads: int) -> None:
    """In a grading process: the kernels it starts run PyTorch with ``threads`` threads. More threads
    than cores, as when several kernels each take them all, slow every one of them down many times."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


def _grade_one(submission: str, autograder: str):
    """otter run on one submission: its GradingResults (without the executed notebook), or, when otter
    cannot grade it, results that say why, so that it gets a row rather than stopping the others."""
    from otter.run import main as otter_run
    from otter.test_files import GradingResults

    try:
        results = otter_run(submission, autograder=autograder, output_dir=None, no_logo=True)
        results.notebook = None
    except Exception as exc:   # kept as text: the results travel back from a worker process by pickle
        results = GradingResults.without_results(RuntimeError(f"{type(exc).__name__}: {exc}"))
    results.file = Path(submission).name
    return results
