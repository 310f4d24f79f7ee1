"""Static checks of the book's notebooks (nbval executes them; these check how they are written)."""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from conftest import solution_of_each_code_cell

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from notebook_stamp import trains_a_network  # noqa: E402

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
    version = re.search(r'(?m)^version = "([^"]+)"', (BOOK.parent / "pyproject.toml").read_text()).group(1)
    # the release this version of the book was made with (tools/set_release.py), not whatever main holds
    assert f'url = "git+{url}@v{version}"' in setup
    assert '%pip install -q "alexnet-edu[d2l] @ {url}"' in setup   # IPython expands {url}
    assert 'if "google.colab" in sys.modules:' in setup
    assert 'find_spec("alexnet_edu") is None' in setup and "raise RuntimeError" in setup   # a failed install says so


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
AWAITING_GPU = ["inside", "lrn"]


def stamp(path):
    return json.loads(path.read_text())["metadata"].get("alexnet_edu", {})


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if "get_profile" in p.read_text()], ids=lambda p: p.stem)
def test_the_website_shows_full_profile_outputs(path):
    text = "".join("".join(o.get("text", "")) for c in cells(path, "code") for o in c["outputs"])
    if path.stem in AWAITING_GPU:
        assert stamp(path).get("profile") != "full", f"{path.stem} has full-profile outputs now: take it off AWAITING_GPU"
        assert "profile 'cpu'" in text     # and until then it says so
        return
    assert stamp(path).get("profile") == "full", "executed by tools/execute_notebooks.py in the full profile"
    assert "profile 'full'" in text and "profile 'cpu'" not in text
    if trains_a_network("".join(source(c) for c in cells(path, "code"))):
        assert stamp(path)["device"] == "cuda", "full-scale training ran on a GPU"


# Figures about our own runs, as prose writes them: accuracies (0.917), and numbers with a unit of
# results (%, x, s, min, points, images/s, times), alone or as a range (7,000-8,500 images/s).
NUMBER = r"\d[\d,]*(?:\.\d+)?"
RESULT_UNIT = r"(?:\s?%|x\b|×|\s(?:s|seconds|min|minutes|points?|images/s|examples/s|img/s|times)\b)"
RESULT = re.compile(rf"(?<![\w.,])(0\.(?!00)\d{{3,4}}\b|{NUMBER}(?:\s?[–-]\s?{NUMBER})?(?={RESULT_UNIT}))")


def prose_without_code_or_math(markdown):
    for pattern in (r"```.*?```", r"\$\$.*?\$\$", r"\$[^$\n]+\$", r"\{glue:?\w*\}`[^`]*`", r"`[^`\n]*`"):
        markdown = re.sub(pattern, " ", markdown, flags=re.S)
    return markdown


def output_text(path):
    texts = []
    for cell in cells(path, "code"):
        for output in cell["outputs"]:
            texts.append("".join(output.get("text", "")))
            texts += ["".join(v) for k, v in output.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(texts).replace(",", "")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_prose_quotes_only_figures_its_outputs_produce(path):
    """A figure about our runs in a chapter's prose is glued from its outputs (myst-nb's glue), or
    appears in them as written; figures from the paper and other sources sit in a paragraph that
    cites its source. Re-executing a chapter cannot leave its prose behind."""
    produced, orphans = output_text(path), []
    for cell in cells(path, "markdown"):
        for paragraph in re.split(r"\n\s*\n", source(cell)):
            if "{cite" in paragraph:
                continue
            for match in RESULT.finditer(prose_without_code_or_math(paragraph)):
                numbers = re.findall(NUMBER, match.group(1).replace(",", ""))
                if not all(re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", produced) for n in numbers):
                    orphans.append(f"{match.group(1)!r} in: {' '.join(paragraph.split())[:90]}...")
    assert not orphans, "figures no output on the page produces (glue them):\n" + "\n".join(orphans)


def test_the_prose_quotes_rule_catches_an_unproduced_figure(tmp_path):
    notebook = {"cells": [{"cell_type": "markdown", "source": ["LRN cost 1.5 points and ran 2.1x as fast; "
                                                               "test accuracy 0.917."]},
                          {"cell_type": "code", "source": [], "outputs": [{"text": ["test acc 0.917"]}]}]}
    path = tmp_path / "made_up.ipynb"
    path.write_text(json.dumps(notebook))
    with pytest.raises(AssertionError, match=r"'1.5'(.|\n)*'2.1'"):
        test_the_prose_quotes_only_figures_its_outputs_produce(path)
    # a figure counts as produced only as a whole number: "3" is not in "0.913 (312.15 s)"
    notebook["cells"][0]["source"] = ["It took 3 points and 2.1x as long."]
    notebook["cells"][1]["outputs"] = [{"text": ["test acc 0.913 (312.15 s)"]}]
    path.write_text(json.dumps(notebook))
    with pytest.raises(AssertionError, match=r"'3'(.|\n)*'2.1'"):
        test_the_prose_quotes_only_figures_its_outputs_produce(path)
    notebook["cells"][1]["outputs"] = [{"text": ["test acc 0.917"]}]
    notebook["cells"][0]["source"] = ["LRN cost {glue:text}`lrn_cost:.1f` points; 0.917."]
    path.write_text(json.dumps(notebook))
    test_the_prose_quotes_only_figures_its_outputs_produce(path)


# Issue 17: every figure a chapter's code draws is a numbered figure with a caption (myst-nb's
# `mystnb: figure: {caption, name}` cell metadata), the prose refers to it by number ({numref}),
# and a reader who cannot see it gets a description: `mystnb: image: alt` for an image, the alt
# attribute of the frames for an HTML animation (alexnet_edu.animation).
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
FILE_NAME = re.compile(r"\S+\.(png|jpe?g|gif|svg)", re.I)


def is_a_description(alt):
    """Some words about the picture: not missing, not a file name (myst-nb's default), not a stub."""
    return alt is not None and not FILE_NAME.fullmatch(alt.strip()) and len(alt.split()) >= 8


def figures_of(path):
    """(cell, the alternative texts of the images it draws: none if it draws none) for each code cell."""
    for cell in cells(path, "code"):
        options = cell["metadata"].get("mystnb", {})
        images = [o for o in cell["outputs"] if set(IMAGE_TYPES) & set(o.get("data", {}))]
        alts = [options.get("image", {}).get("alt")] * len(images)
        for output in cell["outputs"]:
            page = "".join(output.get("data", {}).get("text/html", ""))
            for tag in re.findall(r"<img\b[^>]*>", page):
                alt = re.search(r'\balt="([^"]*)"', tag)
                alts.append(alt and alt.group(1))
        yield cell, alts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_has_a_caption_a_number_and_a_text_alternative(path):
    markdown = "\n".join(source(c) for c in cells(path, "markdown"))
    for cell, alts in figures_of(path):
        where = f"cell {cell.get('id')} ({source(cell)[:40]!r})"
        figure = cell["metadata"].get("mystnb", {}).get("figure", {})
        if not alts:
            assert not figure, f"{where} has a caption but no figure"
            continue
        assert figure.get("caption") and figure.get("name"), f"{where}: a figure without a caption and a label"
        undescribed = [alt for alt in alts if not is_a_description(alt)]
        assert not undescribed, f"{where}: images with no alternative text, or only a file name: {undescribed}"
        assert f"{{numref}}`{figure['name']}`" in markdown, f"the prose never refers to {figure['name']}"


def test_the_figure_rule_catches_missing_captions_and_file_names(tmp_path):
    png = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": ["<Figure>"]}}
    cell = {"cell_type": "code", "metadata": {}, "source": ["plt.plot()"], "outputs": [png]}
    prose = {"cell_type": "markdown", "metadata": {}, "source": ["As {numref}`fig-x` shows."]}
    path = tmp_path / "made_up.ipynb"

    def check(metadata):
        cell["metadata"] = metadata
        path.write_text(json.dumps({"cells": [prose, cell]}))
        test_every_figure_has_a_caption_a_number_and_a_text_alternative(path)

    with pytest.raises(AssertionError, match="without a caption"):
        check({})
    caption = {"figure": {"caption": "A line.", "name": "fig-x"}}
    for alt in (None, "_images/28fb99b9c0.png", "a plot"):
        with pytest.raises(AssertionError, match="no alternative text"):
            check({"mystnb": caption | {"image": {"alt": alt}}})
    check({"mystnb": caption | {"image": {"alt": "A straight line rising from the bottom left to the top right."}}})
    png["data"] = {"text/html": '<img id="_anim_img1" src="x.png">'}   # an animation's frames
    with pytest.raises(AssertionError, match="no alternative text"):
        check({"mystnb": caption})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_chapter_leaves_no_temporary_files_behind(path):
    # mkdtemp's folders stay until someone deletes them: the training chapter left a 173-MB checkpoint
    # in /tmp at every run, the two-GPU chapter 173 MB of parameters. A TemporaryDirectory is deleted by
    # `with` or .cleanup(); its finalizer alone is not enough (nbval kills its kernels: none runs).
    # tests/test_colab_like.py checks the temporary folder after each chapter.
    code = "\n".join(source(c) for c in cells(path, "code"))
    assert not re.search(r"\bmkdtemp\(|\bmkstemp\(|delete\s*=\s*False", code), \
        "use tempfile.TemporaryDirectory, deleted by `with` or .cleanup()"
