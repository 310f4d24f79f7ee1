"""Set-up shared by the tests and the notebooks nbval executes. It sits at the repository's root so that
it applies to both, also when a chapter is run alone (`pytest --nbval-lax book/relu.ipynb` runs it in the
smoke profile with the emulated second device, as `make test` does, not in this machine's own profile)."""

import atexit
import gzip
import os
import re
import shutil
import struct
import tempfile
from pathlib import Path

# Under pytest-xdist (`make test` runs `pytest -n auto`), each worker's PyTorch gets its share of the
# cores, set before torch is imported; its kernels and subprocesses inherit it. Without this, two workers
# that each take every core ran the smoke notebooks 2x *slower* than one worker (2 cores: 161 s vs 74 s
# for six chapters; 52 s with one thread each).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT") and "OMP_NUM_THREADS" not in os.environ:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ["OMP_NUM_THREADS"] = str(max(1, _cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Tests, and the notebooks nbval executes (their kernels inherit this environment), run in the
# seconds-long smoke profile unless told otherwise. This never changes what the website shows: that
# comes from the outputs saved in the notebooks.
os.environ.setdefault("ALEXNET_EDU_PROFILE", "smoke")

from alexnet_edu import data as data_module  # noqa: E402

# The notebooks the tests execute (nbval, otter, ...) run with an emulated second device
# (tests/second_device.py): a chapter that mixes the CPU and default_device() fails here as it would on
# a GPU. Their kernels start it from an IPython startup file; ALEXNET_EDU_SECOND_DEVICE=0 leaves it out.
TESTS = Path(__file__).resolve().parent / "tests"
STARTUP = f"""def _start_second_device():   # a function: the chapter's namespace gets no name from here
    import sys
    sys.path.insert(0, {str(TESTS)!r})
    try:
        import second_device
        second_device.emulate()
    finally:
        del sys.path[0]


_start_second_device()
del _start_second_device
"""


def second_device_ipython_dir(folder: Path) -> Path:
    """An IPYTHONDIR whose startup file starts the emulation in every kernel that uses it."""
    startup = folder / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-second-device.py").write_text(STARTUP)
    return folder


SECOND_DEVICE = os.environ.get("ALEXNET_EDU_SECOND_DEVICE", "1") != "0"

if SECOND_DEVICE:   # every kernel the tests start
    _ipython_dir = Path(tempfile.mkdtemp(prefix="second-device-"))
    atexit.register(shutil.rmtree, _ipython_dir, ignore_errors=True)
    os.environ["IPYTHONDIR"] = str(second_device_ipython_dir(_ipython_dir))

FILES = data_module.FILES


def write_idx(path, array, compress):
    """Write an IDX file (big-endian header: magic 0x0000_08_ndim, then each dimension)."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def write_tiny_fashion_mnist(folder, n_train=40, n_test=20, compress=True, seed=0):
    """Four small IDX files with the real names: images i have every pixel = label * 25."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    suffix = ".gz" if compress else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        images = np.repeat(labels[:, None, None] * 25, 28, 1).repeat(28, 2)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
    return folder


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real data anywhere: an empty cache, no system copy, no ALEXNET_EDU_DATA."""
    monkeypatch.setenv("ALEXNET_EDU_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ALEXNET_EDU_DATA", raising=False)
    monkeypatch.setattr(data_module, "SYSTEM_DIR", tmp_path / "no-system-copy")
    return tmp_path


def solution_of_each_code_cell(cells):
    """For ``(cell_type, source)`` pairs in notebook order, the number of the solution each code cell
    belongs to (0, 1, ... in order of their solution-start markers), or None outside any solution.
    A markdown cell can close one solution and open the next, or hold a whole one."""
    current, opened, found = None, 0, []
    for cell_type, text in cells:
        if cell_type == "markdown":
            for marker in re.findall(r"\{solution-(start|end)\}", text):
                current = opened if marker == "start" else None
                opened += marker == "start"
        elif cell_type == "code":
            found.append(current)
    return found


# Files whose tests go to one worker together (below): a notebook's cells, which nbval runs in order in
# one kernel, and the browser test, which builds the website once and loads each page once for its three tests.
KEPT_TOGETHER = (".ipynb", "tests/test_site.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist: each test goes to whichever worker is free, except those of KEPT_TOGETHER's files,
    which go to one worker, file by file. (xdist's own --dist loadgroup does not group with pytest 9.2,
    which ignores the node id it rewrites.) Another --dist is left to xdist."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class NotebooksWhole(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            return path if path.endswith(KEPT_TOGETHER) else nodeid

    return NotebooksWhole(config, log)
