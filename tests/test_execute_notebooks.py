"""tools/execute_notebooks.py on tiny notebooks: stamps, skipping, keeping full outputs, the budget, failures."""

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "execute_notebooks.py"
sys.path.insert(0, str(ROOT / "tools"))
import execute_notebooks  # noqa: E402
from notebook_stamp import code_hash, stamp_of  # noqa: E402

PRINT_PROFILE = 'import os\nprint("profile is", os.environ["ALEXNET_EDU_PROFILE"])'


def write_notebook(path, *code, stamp=None):
    notebook = new_notebook(cells=[new_markdown_cell("# A chapter"), *(new_code_cell(c) for c in code)])
    if stamp is not None:
        notebook.metadata["alexnet_edu"] = stamp
    nbformat.write(notebook, path)
    return path


def run_script(*args):
    """The script as a user runs it: plain python, the package importable through PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_a_run_stamps_the_notebook_and_a_second_run_skips_it(tmp_path):
    path = write_notebook(tmp_path / "chapter.ipynb", PRINT_PROFILE)
    first = run_script("--profile", "smoke", path)
    assert first.returncode == 0, first.stdout + first.stderr
    notebook = nbformat.read(path, as_version=4)
    assert notebook.cells[1].outputs[0]["text"] == "profile is smoke\n"
    stamp = stamp_of(notebook)
    assert stamp["profile"] == "smoke"
    assert stamp["code"] == code_hash(notebook)
    assert stamp["seconds"] > 0 and stamp["torch"] and stamp["machine"] and stamp["executed"]

    saved = path.read_bytes()
    second = run_script("--profile", "smoke", path)
    assert second.returncode == 0
    assert "up to date" in second.stdout
    assert path.read_bytes() == saved


def test_code_makes_a_chapter_stale_and_prose_does_not():
    notebook = new_notebook(cells=[new_markdown_cell("# Title"), new_code_cell("x = 1")])
    before = code_hash(notebook)
    notebook.cells[0].source = "# Another title"
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="an output")]
    assert code_hash(notebook) == before
    notebook.cells[1].source = "x = 2"
    assert code_hash(notebook) != before


def test_pointing_the_colab_setup_cell_at_a_new_release_leaves_the_outputs_current():
    setup = '# Setup: in Colab, install ...\nurl = "git+https://github.com/o/r@v0.1.0"'
    notebook = new_notebook(cells=[new_code_cell(setup), new_code_cell("x = 1")])
    before = code_hash(notebook)
    notebook.cells[0].source = setup.replace("v0.1.0", "v0.2.0")
    assert code_hash(notebook) == before
    notebook.cells[1].source = "x = 2"
    assert code_hash(notebook) != before


def test_a_new_release_version_leaves_the_outputs_current(tmp_path):
    # tools/set_release.py rewrites __version__ in the package's __init__.py, which every chapter imports
    package = tmp_path / "alexnet_edu"
    package.mkdir()
    init = package / "__init__.py"
    init.write_text('"""The package."""\n\n__version__ = "0.1.0"\nfrom .models import alexnet\n')
    (package / "models.py").write_text("def alexnet():\n    return 1\n")
    notebook = new_notebook(cells=[new_code_cell("import alexnet_edu\nalexnet_edu.alexnet()")])
    before = code_hash(notebook, package)
    init.write_text(init.read_text().replace("0.1.0", "0.2.0"))
    assert code_hash(notebook, package) == before
    init.write_text(init.read_text().replace("from .models import alexnet", "from .models import alexnet as a"))
    assert code_hash(notebook, package) != before


def test_full_profile_outputs_are_kept_unless_forced(tmp_path, capsys):
    path = write_notebook(tmp_path / "gpu.ipynb", PRINT_PROFILE,
                          stamp={"profile": "full", "machine": "NVIDIA H200", "code": "old", "seconds": 30})
    saved = path.read_bytes()
    assert execute_notebooks.main(["--profile", "smoke", str(path)]) == 0
    assert "kept" in capsys.readouterr().out
    assert path.read_bytes() == saved

    assert execute_notebooks.main(["--profile", "smoke", "--force", str(path)]) == 0
    assert "executed" in capsys.readouterr().out
    assert stamp_of(nbformat.read(path, as_version=4))["profile"] == "smoke"


def test_a_budget_too_small_for_the_expected_time_runs_nothing(tmp_path, capsys):
    never_run = write_notebook(tmp_path / "new.ipynb", PRINT_PROFILE)
    # stale (the code hash differs), and its last run in this profile took 1000 s
    slow = write_notebook(tmp_path / "slow.ipynb", PRINT_PROFILE,
                          stamp={"profile": "smoke", "code": "old", "seconds": 1000})
    saved = {p: p.read_bytes() for p in (never_run, slow)}
    code = execute_notebooks.main(["--profile", "smoke", "--budget", "30", "--default-seconds", "60",
                                   str(slow), str(never_run)])
    out = capsys.readouterr().out
    assert code == 0
    assert "slow: not started, expects 1000 s" in out
    assert "new: not started, expects 60 s" in out
    assert "executed" not in out
    assert "Not run for lack of time: slow, new" in out
    assert all(p.read_bytes() == b for p, b in saved.items())


def test_a_chapter_still_running_when_the_budget_ends_is_interrupted_and_left_untouched(tmp_path):
    path = write_notebook(tmp_path / "sleepy.ipynb", "print('first cell done')", "import time\ntime.sleep(60)")
    saved = path.read_bytes()
    start = time.monotonic()
    # 20 s: enough to import torch and start a kernel on a busy 2-core machine, not to sleep 60 s
    result = run_script("--profile", "smoke", "--budget", "20", "--default-seconds", "1",
                        "--failed-dir", tmp_path / "failed", path)
    assert time.monotonic() - start < 40, "the budget was not kept"
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sleepy: interrupted" in result.stdout
    assert "Not run for lack of time: sleepy" in result.stdout
    assert path.read_bytes() == saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failed", "sleepy.ipynb"], "no temporary file left behind"
    # what it had done is kept for reading, and the kernel said where it was stuck
    partial = nbformat.read(tmp_path / "failed" / "sleepy.interrupted.ipynb", as_version=4)
    assert partial.cells[1].outputs[0]["text"] == "first cell done\n"
    assert "most recent call first" in result.stderr and "in <module>" in result.stderr


def test_a_failing_chapter_goes_to_the_failed_dir_and_the_others_still_run(tmp_path):
    failing = write_notebook(tmp_path / "broken.ipynb", "1 / 0")
    good = write_notebook(tmp_path / "good.ipynb", PRINT_PROFILE)
    out_dir, failed_dir = tmp_path / "out", tmp_path / "failed"
    saved = {p: p.read_bytes() for p in (failing, good)}
    result = run_script("--profile", "smoke", "--jobs", "2", "--out-dir", out_dir, "--failed-dir", failed_dir,
                        failing, good)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    finished = min(i for i, line in enumerate(lines) if "FAILED" in line or "executed in" in line)
    assert sum("started" in line for line in lines[:finished]) == 2, "--jobs 2 runs both at once"
    assert "ZeroDivisionError" in result.stdout

    broken = nbformat.read(failed_dir / "broken.failed.ipynb", as_version=4)
    assert broken.cells[1].outputs[0]["ename"] == "ZeroDivisionError"
    assert stamp_of(nbformat.read(out_dir / "good.ipynb", as_version=4))["profile"] == "smoke"
    assert not (out_dir / "broken.ipynb").exists()
    assert all(p.read_bytes() == b for p, b in saved.items()), "--out-dir leaves the notebooks in place alone"


def test_by_default_chapters_without_outputs_in_the_profile_go_before_stale_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(execute_notebooks, "BOOK", tmp_path)
    monkeypatch.setattr(execute_notebooks, "ORDER", ["stale", "new", "cpu_only"])
    write_notebook(tmp_path / "stale.ipynb", PRINT_PROFILE, stamp={"profile": "full", "code": "old", "seconds": 5})
    write_notebook(tmp_path / "new.ipynb", PRINT_PROFILE)
    write_notebook(tmp_path / "cpu_only.ipynb", PRINT_PROFILE, stamp={"profile": "cpu", "code": "old", "seconds": 5})
    assert execute_notebooks.main(["--profile", "full", "--budget", "0"]) == 0   # plans, runs nothing
    out = capsys.readouterr().out
    not_started = [line.split("] ")[1].split(":")[0] for line in out.splitlines() if "not started" in line]
    assert not_started == ["new", "cpu_only", "stale"]
