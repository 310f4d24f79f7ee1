"""`alexnet-edu train` under torchrun: two CPU processes (gloo) train as one process does."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from alexnet_edu import distributed

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="this PyTorch build has no torch.distributed with gloo")

# LeNet has no dropout, whose random masks differ between one process and two, so every number
# of the two runs is comparable; its 61,706 weights and 28 px input also keep the runs short.
TRAIN = ["-m", "alexnet_edu.cli", "train", "--model", "lenet", "--lr", "0.1"]


def run(processes: int, *options: str) -> subprocess.CompletedProcess:
    """``alexnet-edu train`` in the smoke profile on the CPU: in this process's Python (0), or
    under ``torchrun --standalone --nproc-per-node processes``."""
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)]
    command = [sys.executable, *(launcher if processes else []), *TRAIN, *options]
    env = dict(os.environ, ALEXNET_EDU_PROFILE="smoke", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_two_processes_train_as_one_and_resume(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    single = run(0, "--epochs", "2", "--out", str(one))
    assert single.returncode == 0, single.stderr[-3000:]
    # two processes: one epoch, then a resume for the second
    first = run(2, "--epochs", "1", "--out", str(two))
    assert first.returncode == 0, first.stderr[-3000:]
    second = run(2, "--epochs", "2", "--resume", "--out", str(two))
    assert second.returncode == 0, second.stderr[-3000:]

    # process 0 alone printed, and wrote the folder: no second history, no stray files
    assert first.stdout.count("epoch 1: loss") == 1 and "epoch 2: loss" not in first.stdout
    assert first.stdout.count("2 processes (gloo), this machine's on the CPU") == 1
    assert second.stdout.count("resumed from") == 1 and second.stdout.count("epoch 2: loss") == 1
    assert {p.name for p in two.iterdir()} == {"checkpoint.pt", "checkpoint.prev.pt", "history.json"}

    h1, h2 = (json.loads((folder / "history.json").read_text()) for folder in (one, two))
    assert h2["settings"]["processes"] == 2 and "processes" not in h1["settings"]
    assert h2["settings"]["batch_size"] == h1["settings"]["batch_size"] == 32   # the global batch
    # the same batches, hits and test counts; losses and weights equal up to float rounding
    for key in ("train_acc", "test_acc", "batch_train_acc"):
        assert h2[key] == h1[key], key
    assert len(h2["batch_train_acc"]) == 10   # the smoke profile's 160 images in batches of 32, two epochs
    torch.testing.assert_close(h2["train_loss"], h1["train_loss"], rtol=0, atol=1e-5)
    w1, w2 = (torch.load(folder / "checkpoint.pt")["model"] for folder in (one, two))
    torch.manual_seed(0)   # the CLI's seed: where both runs started
    from alexnet_edu.cli import build_model
    start = build_model("lenet", 28).state_dict()
    moved = max((w1[k] - start[k]).abs().max() for k in w1)
    differ = max((w1[k] - w2[k]).abs().max() for k in w1)
    assert moved > 0.01            # training changed the weights...
    # measured here: moved 0.109, differ 8.9e-8 (the processes add up in another order), losses
    # equal to 2e-7 or exactly
    assert differ < 1e-4 * moved   # ...and the two runs changed them alike, up to rounding


def test_a_batch_that_does_not_split_evenly_says_what_to_do():
    with pytest.raises(distributed.LaunchError, match="32 images does not split evenly between 3 "
                       r"processes: .* 2, 4, 8, 16, 32$"):
        distributed.check_batch(32, 3)
    distributed.check_batch(128, 4)


def test_more_processes_than_gpus_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    with pytest.raises(distributed.LaunchError, match="4 processes on this machine, which has 2 GPU.*"
                       "--nproc-per-node 2"):
        distributed.start()
    assert not dist.is_initialized()


def test_no_gpu_and_no_request_for_cpu_processes_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(distributed.LaunchError, match="sees no GPU.*without torchrun.*CUDA_VISIBLE_DEVICES="):
        distributed.start()
