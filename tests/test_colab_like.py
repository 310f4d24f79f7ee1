"""Each chapter as a student runs it in Colab: the notebook alone in an empty folder, the package
installed by the chapter's own setup cell from a git URL of this repository at the release tag the
cell names, into a Python that has never seen the package; smoke profile, emulated second device.

The stand-in for Colab:
- a throw-away virtual environment without the package, which borrows the big libraries (torch, ...)
  from the test's own environment through a .pth file instead of downloading them; pip installs into it
  offline (no index, no build isolation);
- a ``google.colab`` module, imported when the kernel starts, as Colab does;
- the setup cell's github.com URL pointed at a git repository made from this working tree and tagged
  with the release the cell installs.
Since this is the one run of each chapter's solutions outside nbval, it also checks the grades an
instructor relies on: every hidden test of the chapter's autograded exercises (otter's test files, run
as otter runs them) gives the chapter's own answers every point and the blank copy's stubs none.
(`ALEXNET_EDU_GRADE_ALL=1` makes tests/test_assignment.py grade every chapter with otter itself too.)
Colab installs from GitHub, so a chapter there downloads the book's reference GPU run of that commit
(tests/test_reference.py covers the download): here the two chapters that show the run find one beside
them instead, recorded by this code in the smoke profile, so that the code that reads a run, and what
the chapters show of it, are checked without a GPU; the other chapters say why no run is shown.
It does not stand in for Colab's own package versions, its GPU, or its widget manager.
The test environment must hold the package as an editable install (`make setup` does: `pip install -e`),
which the throw-away environment does not see.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import urllib.parse
import warnings
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
import torch
import yaml
from nbclient import NotebookClient

from alexnet_edu.assignment import chapters, load_grading
from alexnet_edu.cli import main
from alexnet_edu.reference import CONV_WEIGHTS
from conftest import SECOND_DEVICE, second_device_ipython_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from kernel_polling import poll_channels_often  # noqa: E402
from notebook_stamp import is_colab_setup  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
REPOSITORY = yaml.safe_load((BOOK / "_config.yml").read_text())["repository"]["url"]
KERNEL = "colab-like"
WHERE = "import alexnet_edu; print('alexnet_edu from', alexnet_edu.__file__, 'on', alexnet_edu.default_device())"
# Run last in a chapter with graded exercises: every hidden test, as otter runs it, on the chapter's own
# answers and on the answers a blank student copy leaves (its stubs, over the chapter's objects).
GRADES = """def _grades(chapter):
    import json
    from alexnet_edu.assignment import hidden_score, load_grading
    found = {}
    for label, exercise in load_grading(chapter).exercises.items():
        if exercise.graded_by_otter:
            scores = []
            for answers in ("", exercise.stub):
                namespace = dict(globals())
                exec(answers, namespace)
                scores.append(hidden_score(exercise, namespace))
            found[label] = [*scores, exercise.points]
    print("grades", json.dumps(found))
"""
# The chapters that show the reference run, and what each checks last, in its own namespace, about it.
SHOW_REFERENCE = {
    "training": "assert recorded.profile == 'smoke' and recorded.epochs == 1\nprint('reference checked')",
    "inside": ("saved = torch.load('data/reference/" + CONV_WEIGHTS + "')\n"
               "assert torch.equal(shown.features[0].weight.detach().cpu().half(), saved['0.weight'])\n"
               "assert shown is not trained_here and shown_resolution == recorded.settings['resolution']\n"
               "print('reference checked')"),
}


def git(*args, cwd):
    # the machine's git settings (signing, hooks) left out
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args],
                   cwd=cwd, env=env, check=True, capture_output=True)


def package_is_unseen(python: Path, cwd: Path) -> bool:
    found = subprocess.run([str(python), "-c", "import alexnet_edu"], cwd=cwd, capture_output=True, text=True)
    return found.returncode != 0 and "No module named 'alexnet_edu'" in found.stderr


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """(release repository, the throw-away environment's python and site-packages, environment for the kernels)."""
    root = tmp_path_factory.mktemp("colab")

    # the release: this working tree (tracked and new files), committed and tagged as the setup cell says
    repo = root / "repo"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    version = re.search(r'(?m)^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "release", cwd=repo)
    git("tag", f"v{version}", cwd=repo)

    # a Python without the package, which sees the test environment's libraries (and its pip)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    borrowed = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "test-environment.pth").write_text("".join(f"{path}\n" for path in borrowed))
    (site / "google" / "colab").mkdir(parents=True)
    (site / "google" / "colab" / "__init__.py").write_text('"""Stand-in: the chapters only ask whether it is loaded."""\n')
    assert package_is_unseen(python, root), \
        "the throw-away environment sees alexnet_edu: install it in the test environment with pip install -e"

    kernels = root / "jupyter" / "kernels" / KERNEL
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like", "language": "python"}))
    ipython = root / "ipython"
    if SECOND_DEVICE:    # the emulated second device, started before the package is installed
        second_device_ipython_dir(ipython)
    startup = ipython / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "10-colab.py").write_text("import google.colab  # Colab has it loaded before the first cell\n")
    # pip offline: dependencies are found in the borrowed libraries, and the package is built with their
    # setuptools ("0" turns build isolation *off*: pip reads PIP_NO_BUILD_ISOLATION as --no-build-isolation)
    env = {"JUPYTER_PATH": str(root / "jupyter"), "IPYTHONDIR": str(ipython),
           "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0"}
    return repo, python, site, env


def point_setup_cell_at(nb, repo: Path) -> None:
    setup = next(c for c in nb.cells if c.cell_type == "code")
    assert is_colab_setup(setup) and setup.source.count(REPOSITORY) == 1, \
        "the first code cell is the setup cell, and it installs from the book's repository"
    # file://localhost/...: pip 23's URL check wants a host
    setup.source = setup.source.replace(REPOSITORY, f"file://localhost{urllib.parse.quote(str(repo))}")


def slow_cells(nb, limit: float):
    """(number among the code cells, seconds) of each cell that took over ``limit`` seconds, from the
    timestamps nbclient records."""
    found = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    for number, cell in enumerate(code):
        times = cell.metadata.get("execution", {})
        if "iopub.status.busy" in times and "shell.execute_reply" in times:
            start, end = (datetime.fromisoformat(times[k].replace("Z", "+00:00"))
                          for k in ("iopub.status.busy", "shell.execute_reply"))
            if (end - start).total_seconds() > limit:
                found.append((number, (end - start).total_seconds()))
    return found


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """``data/reference/`` as the book keeps it (history.json and the fp16 convolutions), recorded by
    the same command as the book's GPU run, in the smoke profile."""
    reference = tmp_path_factory.mktemp("recorded") / "data" / "reference"
    assert main(["train", "--model", "alexnet", "--profile", "smoke", "--out", str(reference), "--save-convs"]) == 0
    (reference / "checkpoint.pt").unlink()          # git-ignored: the book does not keep it
    assert sorted(p.name for p in reference.iterdir()) == [CONV_WEIGHTS, "history.json"]
    saved = torch.load(reference / CONV_WEIGHTS)
    assert saved["0.weight"].dtype == torch.float16 and saved["0.weight"].shape == (96, 1, 11, 11)
    return reference


@pytest.fixture
def short_tmp():
    """The chapter's TMPDIR, to see what it leaves there. Short: multiprocessing puts AF_UNIX sockets in it,
    whose paths may not exceed 107 bytes, and with pytest-xdist's longer tmp_path d2l's DataLoader workers
    in the training chapter waited forever."""
    with tempfile.TemporaryDirectory(prefix="colab-tmp-") as folder:
        yield Path(folder)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_runs_alone_after_its_setup_cell_installs_the_release(colab, path, tmp_path, short_tmp, monkeypatch,
                                                                     request):
    repo, python, site, env = colab
    # every chapter installs the package itself, into an environment without it, as in a new Colab runtime
    subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", "alexnet-edu"], check=True,
                   capture_output=True)
    assert package_is_unseen(python, tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TMPDIR", str(short_tmp))
    content = tmp_path / "content"            # the working folder: nothing of the book's beside the chapter
    content.mkdir()
    nb = nbformat.read(path, as_version=4)
    point_setup_cell_at(nb, repo)
    shows_reference = path.stem in SHOW_REFERENCE
    if shows_reference:   # where Colab's download would put it
        shutil.copytree(request.getfixturevalue("reference_run"), content / "data" / "reference")
        nb.cells.append(nbformat.v4.new_code_cell(SHOW_REFERENCE[path.stem]))
    nb.cells.append(nbformat.v4.new_code_cell(WHERE))
    graded = path.stem in chapters()
    if graded and importlib.util.find_spec("otter") is None:
        pytest.fail("otter-grader is missing, so this chapter's grades go unchecked: pip install -e '.[grade]'")
    if graded:
        nb.cells.append(nbformat.v4.new_code_cell(f"{GRADES}\n\n_grades({path.stem!r})"))
    nbformat.write(nb, content / path.name)

    # the kernel is killed at the end, as nbval does (and as a crashed or recycled runtime is): no
    # finalizer runs, so a chapter must delete what it made itself
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=300,   # seconds a cell may take: smoke cells take a few
                            shutdown_kernel="immediate", resources={"metadata": {"path": str(content)}})
    client.on_notebook_start = lambda notebook: poll_channels_often(client.kc)   # jupyter/nbclient#312
    client.execute()

    def text(cell):
        return "".join(o.get("text", "") + "".join(o.get("data", {}).get("text/plain", ""))
                       for o in cell.get("outputs", []))

    for number, seconds in slow_cells(nb, 120):   # smoke cells take seconds: say where a stall happened
        warnings.warn(f"{path.stem}: code cell {number} took {seconds:.0f} s")
    if graded:   # this run is the chapter's solutions run outside nbval: the grades an instructor relies on
        grades = json.loads(re.search(r"^grades (\{.*\})$", text(nb.cells.pop()), re.M).group(1))
        assert set(grades) == {label for label, e in load_grading(path.stem).exercises.items() if e.graded_by_otter}
        for label, (own, blank, points) in grades.items():
            assert (own, blank) == (points, 0), f"{label}: the chapter's answer earns {own} of {points}, the stub {blank}"
    where = text(nb.cells[-1])
    assert f"alexnet_edu from {site}/alexnet_edu/" in where, "the chapter ran the installed package"
    if SECOND_DEVICE:
        assert where.rstrip().endswith("on cpu:0"), "the emulated device took over the package installed late"
    printed = "\n".join(text(c) for c in nb.cells if c.cell_type == "code")
    assert "No reference GPU run has been recorded" not in printed   # the book has one; say why it is not shown
    if shows_reference:
        assert text(nb.cells[-2]).strip() == "reference checked"
        assert "reference run shown" not in printed   # no warning that it is missing
        if path.stem == "training":
            shown = next(c for c in nb.cells if c.cell_type == "code" and "recorded on" in text(c))
            assert "with commit" in text(shown)
            assert any({"image/png", "image/svg+xml"} & set(o.get("data", {})) for o in shown.outputs), \
                "the recorded curves are drawn"   # svg: d2l's train_ch6 above switched the format
        else:
            assert "kernels and feature maps below: convolutions of the reference run recorded on" in printed
            assert "retrieval below (it needs the fully connected layers): trained on this page" in printed
    elif re.search(r"find_reference_run\(", "\n".join(c.source for c in nb.cells)):
        assert "no reference run shown: data/reference/ is not beside this chapter" in printed
    left = sorted(p.name for p in short_tmp.iterdir() if not p.name.startswith("torchelastic_"))
    assert left == [], f"the chapter left temporary files behind: {left}"   # torchrun keeps its own logs
