"""The benchmark runs and prints its table (it is what a GPU session runs first, so it must not
break unnoticed). Its figures are not checked: speed is measured by running it, never in tests."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_tiny_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]


def test_throughput_benchmark_prints_both_pipelines_and_their_ratios(tmp_path):
    data = write_tiny_fashion_mnist(tmp_path / "data")
    env = {**os.environ, "ALEXNET_EDU_DATA": str(data), "ALEXNET_EDU_CACHE": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "benchmarks/throughput.py", "--batch-size", "8", "--batches", "1"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert re.match(r"device: CPU, \d+ threads; torch .+; ours in float32; batch 8; 1 timed batches", lines[0])
    assert lines[1].split() == ["images/s", "d2l", "alexnet_edu", "ratio"]
    for line, label in zip(lines[2:], ["data pipeline only", "training (data + model)"]):
        assert re.fullmatch(re.escape(label) + r" +[\d,]+ +[\d,]+ +\d+\.\d\dx", line), line
    assert len(lines) == 4      # no GPU line on a CPU


def test_options_table_is_refused_without_a_gpu_and_says_why():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --options would run")
    run = subprocess.run([sys.executable, "benchmarks/throughput.py", "--options"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 2
    assert "--options times GPU settings" in run.stderr and "Run it on a GPU" in run.stderr
    assert run.stdout == ""     # refused before loading any data or timing anything
