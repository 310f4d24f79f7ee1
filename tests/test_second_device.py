"""The emulated second device (tests/second_device.py), under which nbval executes the chapters: it
fails where a GPU would, on a model left on the CPU and the like, and changes no number."""

import os

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
    before = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        with SecondDevice():
            yield
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(before)


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
