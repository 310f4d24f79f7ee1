"""The emulated second device (tests/second_device.py), under which nbval executes the chapters: it
fails where a GPU would, on a model left on the CPU and the like, and changes no number."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from torch import nn

from alexnet_edu import fit
from conftest import second_device_ipython_dir
from second_device import DEVICE, OnDevice, SecondDevice
from test_train import easy_data, small_model


@pytest.fixture
def emulated():
    before = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        with SecondDevice():
            yield
    finally:
        torch.__future__.set_swap_module_params_on_conversion(before)


def test_a_layer_left_on_the_cpu_fails_on_the_device_as_on_a_gpu(emulated):
    images = torch.rand(4, 1, 28, 28).to(DEVICE)
    conv = nn.Conv2d(1, 3, 5)
    with pytest.raises(RuntimeError, match="same device"):
        conv(images)
    conv.to(DEVICE)
    maps = conv(images)
    assert isinstance(maps, OnDevice) and maps.device == DEVICE
    assert isinstance(conv.weight, nn.Parameter) and conv.weight.device == DEVICE


def test_mixing_and_numpy_fail_as_on_a_gpu_and_what_cuda_allows_works(emulated):
    x = torch.rand(3, 3).to(DEVICE)
    with pytest.raises(RuntimeError, match="same device"):
        x + torch.rand(3, 3)
    with pytest.raises(TypeError, match="numpy"):
        x.numpy()
    assert isinstance(x + torch.tensor(2.0), OnDevice)          # a 0-d CPU tensor is fine on CUDA
    assert isinstance(x[torch.tensor([0, 2])], OnDevice)        # so is indexing with CPU indices
    assert isinstance(torch.zeros(3, device=x.device), OnDevice)
    assert type(x.cpu()) is torch.Tensor and x.cpu().numpy().shape == (3, 3)
    assert type(x.to("cpu", copy=True)) is torch.Tensor                  # as checkpoints copy weights
    assert f"{x.sum():.1f}" == f"{x.cpu().sum():.1f}" and repr(x).startswith("tensor(")


def test_cuda_s_other_refusals_and_allowances(emulated):
    x = torch.rand(4).to(DEVICE)
    with pytest.raises(RuntimeError, match="same device"):
        torch.rand(4)[x > 0.5]                                   # a CPU tensor, GPU indices
    with pytest.raises(RuntimeError, match="same device"):
        torch.stack([x.sum(), torch.tensor(1.0)])                # no CPU scalars in stack or cat
    with pytest.raises(RuntimeError, match="generator"):
        torch.rand(3, generator=torch.Generator(), device=DEVICE)
    assert type(torch.zeros_like(x, device="cpu")) is torch.Tensor  # made on the CPU, from the GPU
    assert x.numpy(force=True).shape == (4,)


def test_an_optimiser_made_before_the_move_still_trains_the_model(emulated):
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    weight = model.weight
    model.to(DEVICE)                                             # as on CUDA: the same Parameter objects
    assert model.weight is weight and isinstance(weight, OnDevice)
    before = weight.detach().cpu().clone()
    model(torch.ones(2, 3).to(DEVICE)).sum().backward()
    optimizer.step()
    assert not torch.equal(weight.detach().cpu(), before)
    model.load_state_dict({"weight": torch.zeros(1, 3), "bias": torch.ones(1)})   # a CPU state dict
    assert model.weight is weight and isinstance(weight, OnDevice) and weight.abs().sum().item() == 0


def test_training_on_the_emulated_device_gives_the_cpus_numbers(emulated):
    args = dict(profile="smoke", epochs=2, batch_size=16, resolution=72, progress=False, live_plot=False,
                describe=False)
    with torch.overrides._pop_mode_temporarily():   # once without the emulation
        plain_model = small_model()
        plain = fit(plain_model, easy_data(), device="cpu", **args)
    model = small_model()
    there = fit(model, easy_data(), device=DEVICE, **args)
    assert all(isinstance(p, OnDevice) for p in model.parameters())
    assert there.train_loss == plain.train_loss and there.test_acc == plain.test_acc
    for a, b in zip(model.parameters(), plain_model.parameters()):
        assert torch.equal(a.cpu(), b)


def notebook(*cells):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


def test_a_kernel_with_the_startup_file_catches_the_lrn_chapters_old_bug(tmp_path):
    """The LRN chapter once took conv1 from a fresh alexnet() without moving it beside the images:
    fine on a CPU, a crash on every GPU. The kernels nbval starts get the startup file."""
    env = {**os.environ, "IPYTHONDIR": str(second_device_ipython_dir(tmp_path / "ipython"))}
    setup = ("import torch\nfrom alexnet_edu import alexnet, default_device\n"
             "device = default_device()\nimages = torch.rand(2, 1, 224, 224).to(device)")
    with pytest.raises(CellExecutionError, match="same device"):
        NotebookClient(notebook(setup, "conv1 = alexnet().features[0]\nconv1(images)"),
                       timeout=120, kernel_name="python3").execute(env=env)
    fixed = notebook(setup, "conv1 = alexnet().features[0].to(device)\nprint(conv1(images).shape, device)")
    NotebookClient(fixed, timeout=120, kernel_name="python3").execute(env=env)
    assert fixed.cells[1].outputs[0]["text"].strip() == "torch.Size([2, 96, 54, 54]) cpu:0"


def test_checkpoints_resume_and_copies_work_on_the_emulated_device(tmp_path):
    """fit writes its checkpoints from the device and resumes onto it (torch.save, torch.load with
    map_location, the random states); a deep copy of the model stays there. Nothing leaks into the
    chapter's namespace from the startup file."""
    env = {**os.environ, "IPYTHONDIR": str(second_device_ipython_dir(tmp_path / "ipython"))}
    run = notebook(
        "print('sys' in dir(), '_start_second_device' in dir())",
        "import copy\nimport torch\nfrom alexnet_edu import fit, lenet\nfrom test_train import easy_data\n"
        f"out = {str(tmp_path / 'run')!r}\n"
        "args = dict(profile='smoke', batch_size=16, resolution=28, progress=False, live_plot=False,\n"
        "            describe=False, out=out)\n"
        "torch.manual_seed(0)\nfit(lenet(), easy_data(), epochs=1, **args)\n"
        "torch.manual_seed(0)\nmodel = lenet()\nh = fit(model, easy_data(), epochs=2, resume=True, **args)\n"
        "twin = copy.deepcopy(model)\n"
        "print(h.epochs, type(next(twin.parameters())).__name__, next(model.parameters()).device)")
    NotebookClient(run, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(Path(__file__).parent)}}).execute(env=env)
    assert run.cells[0].outputs[0]["text"].strip() == "False False"
    assert run.cells[1].outputs[-1]["text"].strip().endswith("2 OnDevice cpu:0")


def test_the_package_imported_after_the_emulation_started_uses_the_device():
    # as in a Colab-like kernel, whose setup cell installs the package after the startup file ran
    code = f"""
import importlib, inspect, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import second_device
device = second_device.emulate()
assert "alexnet_edu" not in sys.modules
from alexnet_edu import cli, transfer
import alexnet_edu
from alexnet_edu import train
assert alexnet_edu.default_device() == cli.default_device() == transfer.default_device() == device
importlib.reload(train)
assert train.default_device() == device
assert "def fit(" in inspect.getsource(train)          # the wrapped loader still gives the source
print("patched")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "patched" in done.stdout, done.stderr[-3000:]
