"""Static checks of the book's notebooks (nbval executes them; these check how they are written)."""

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import solution_of_each_code_cell

BOOK = Path(__file__).resolve().parents[1] / "book"
NOTEBOOKS = sorted(p for p in BOOK.glob("*.ipynb"))


def cells(path, kind):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == kind]


def source(cell):
    return "".join(cell["source"])


def test_every_chapter_in_the_toc_exists_and_every_notebook_is_in_the_toc():
    toc = (BOOK / "_toc.yml").read_text()
    listed = set(re.findall(r"file: (\S+)", toc)) | {yaml.safe_load(toc)["root"]}
    on_disk = {p.stem for p in BOOK.glob("*.ipynb")} | {p.stem for p in BOOK.glob("*.md")}
    assert listed <= on_disk
    assert {p.stem for p in NOTEBOOKS} <= listed


def test_the_setup_cell_is_identical_everywhere_and_points_at_the_repository():
    firsts = {p.name: source(cells(p, "code")[0]) for p in NOTEBOOKS}
    assert len(set(firsts.values())) == 1, firsts
    setup = next(iter(firsts.values()))
    url = yaml.safe_load((BOOK / "_config.yml").read_text())["repository"]["url"]
    assert f'url = "git+{url}"' in setup
    assert '%pip install -q "alexnet-edu[d2l] @ {url}"' in setup   # IPython expands {url}
    assert 'if "google.colab" in sys.modules:' in setup


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_shape(path):
    markdown = "\n".join(source(c) for c in cells(path, "markdown"))
    assert markdown.lstrip().startswith("# "), "a chapter opens with its title"
    assert "**What you will learn**" in markdown
    assert "## Summary" in markdown
    n_exercises = markdown.count("```{exercise}")
    assert 3 <= n_exercises <= 6
    assert markdown.count("```{solution-start}") == n_exercises
    assert markdown.count(":class: dropdown") >= n_exercises, "solutions are folded away on the site"
    assert "{cite}`" in markdown


DIFFICULTIES = ("**Difficulty:** ★☆☆ warm-up", "**Difficulty:** ★★☆ practice", "**Difficulty:** ★★★ project")
# an exercise fence: its header line, its options (:label: ...), a blank line, then its body
EXERCISE_FENCE = re.compile(r"^```\{exercise\}([^\n]*)\n((?::[^\n]*\n)*)\n?(.*?)\n```", re.M | re.S)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_says_how_hard_it_is(path):
    markdown = [source(c) for c in cells(path, "markdown")]   # a fence may share its cell with other text
    fences = [fence for text in markdown for fence in EXERCISE_FENCE.finditer(text)]
    assert len(fences) == sum(text.count("```{exercise}") for text in markdown), "every fence parsed"
    unlabelled = [fence.group(2).strip() for fence in fences
                  if fence.group(3).split("\n", 1)[0] not in DIFFICULTIES]
    assert not unlabelled, f"exercises whose body does not open with a difficulty label: {unlabelled}"
    # the header line stays as it is: the handout tool parses it
    assert not [fence.group(1) for fence in fences if "Difficulty" in fence.group(1)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_saved_outputs_are_complete_and_honest(path):
    code = [c for c in cells(path, "code") if source(c).strip()]
    assert all(c["execution_count"] is not None for c in code), "every cell was executed before saving"
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    if "get_profile" in "".join(source(c) for c in code):
        # the website's outputs say which profile produced them, and it is not the tests' profile
        assert re.search(r"profile '(cpu|full)'", text), "the saved outputs name the profile they ran in"
        assert "profile 'smoke'" not in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_fits_the_website_column(path):
    # Measured in Chromium at 1280 px: a code cell is 672 px wide, a character 8.6 px, so 75
    # characters fit and a 76th adds a scroll bar; a folded solution is 22 px narrower (72 fit).
    notebook = [(cell["cell_type"], source(cell)) for cell in json.loads(path.read_text())["cells"]]
    code = [text for kind, text in notebook if kind == "code"]
    long = []
    for text, solution in zip(code, solution_of_each_code_cell(notebook)):
        width = 75 if solution is None else 72
        long += [line for line in text.splitlines() if len(line) > width]
    assert not long, f"{len(long)} code line(s) wider than the website shows, e.g. {long[0]!r}"


# Chapters whose committed outputs still come from the `cpu` profile: each waits for a GPU session
# (`make gpu-notebooks`, see README.md), most important first. Remove a chapter from this list when
# its full-profile outputs are committed; the test below fails until you do.
AWAITING_GPU = ["inside", "dropout", "pooling", "lrn", "augmentation"]


def stamp(path):
    return json.loads(path.read_text())["metadata"].get("alexnet_edu", {})


def trains_a_network(path):
    code = "".join(source(c) for c in cells(path, "code"))
    return re.search(r"(?<![\w.])(fit|ablate)\(", code) is not None


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if "get_profile" in p.read_text()], ids=lambda p: p.stem)
def test_the_website_shows_full_profile_outputs(path):
    text = "".join("".join(o.get("text", "")) for c in cells(path, "code") for o in c["outputs"])
    if path.stem in AWAITING_GPU:
        assert stamp(path).get("profile") != "full", f"{path.stem} has full-profile outputs now: take it off AWAITING_GPU"
        assert "profile 'cpu'" in text     # and until then it says so
        return
    assert stamp(path).get("profile") == "full", "executed by tools/execute_notebooks.py in the full profile"
    assert "profile 'full'" in text and "profile 'cpu'" not in text
    if trains_a_network(path):
        assert stamp(path)["device"] == "cuda", "full-scale training ran on a GPU"
