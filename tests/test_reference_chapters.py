"""The two chapters that show the book's recorded reference run, executed with one present.

The real reference run is recorded on a GPU (``alexnet_edu/reference.py``). Here the same command
records one in the smoke profile into a copy of the chapters' ``data/reference/`` folder, so that the
code paths that read it run in CI; the saved chapters are left untouched.
"""

from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient

from alexnet_edu.cli import main
from alexnet_edu.reference import CONV_WEIGHTS

BOOK = Path(__file__).resolve().parents[1] / "book"


@pytest.fixture(scope="module")
def book_copy(tmp_path_factory):
    """A folder with a recorded smoke-profile reference run in ``data/reference/``, as the book has."""
    folder = tmp_path_factory.mktemp("book")
    reference = folder / "data" / "reference"
    assert main(["train", "--model", "alexnet", "--profile", "smoke", "--out", str(reference), "--save-convs"]) == 0
    (reference / "checkpoint.pt").unlink()          # what the book keeps: history.json and the fp16 convolutions
    assert sorted(p.name for p in reference.iterdir()) == [CONV_WEIGHTS, "history.json"]
    return folder


def run_chapter(folder: Path, name: str, check: str):
    """Execute ``book/name.ipynb`` in ``folder`` with a last cell holding ``check``; return its outputs' text."""
    nb = nbformat.read(BOOK / f"{name}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(check))
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return {i: "".join(o.get("text", "") for o in cell.get("outputs", []))
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"}, nb


def test_training_chapter_shows_the_recorded_run(book_copy):
    texts, nb = run_chapter(book_copy, "training", "assert recorded.profile == 'smoke' and recorded.epochs == 1\n"
                                                   "print('reference checked')")
    cell = next(i for i, t in texts.items() if "recorded on" in t)
    assert "with commit" in texts[cell] and "No reference GPU run" not in texts[cell]
    figures = [o for o in nb.cells[cell].outputs if {"image/png", "image/svg+xml"} & set(o.get("data", {}))]
    assert figures, "the recorded curves are drawn"    # svg: d2l's train_ch6 above switched the format
    assert "reference checked" in texts[max(texts)]


def test_inside_chapter_shows_the_reference_convolutions(book_copy):
    check = ("saved = torch.load('data/reference/" + CONV_WEIGHTS + "')\n"
             "assert torch.equal(shown.features[0].weight.detach().cpu().half(), saved['0.weight'])\n"
             "assert shown is not trained_here and shown_resolution == recorded.settings['resolution']\n"
             "print('reference checked')")
    texts, _ = run_chapter(book_copy, "inside", check)
    printed = "\n".join(texts.values())
    assert "kernels and feature maps below: convolutions of the reference run recorded on" in printed
    assert "retrieval below (it needs the fully connected layers): trained on this page" in printed
    assert "reference checked" in texts[max(texts)]
    saved = torch.load(book_copy / "data" / "reference" / CONV_WEIGHTS)
    assert saved["0.weight"].dtype == torch.float16 and saved["0.weight"].shape == (96, 1, 11, 11)
