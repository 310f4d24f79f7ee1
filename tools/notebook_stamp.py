"""The stamp an executed chapter carries in its metadata, and the hash that says whether it is stale.

``notebook.metadata["alexnet_edu"]`` records the profile the outputs were made in, the device and
machine, the torch version, how long the execution took, how many chapters ran at once (``jobs``),
when, and ``code``: a hash of the notebook's code cells and of the package modules they import,
directly or through other modules. Prose (markdown) and outputs are left out, so editing a
chapter's text does not make its outputs stale; changing its code, or a module it runs, does. A module no chapter imports (the command line, the handouts) can
change without sending every chapter back to the GPU. Nor does the Colab setup cell (the first code
cell, starting ``# Setup:``), which does nothing anywhere else, nor the package's ``__version__``
line: pointing the book at a new release (tools/set_release.py) leaves every chapter's outputs current.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

KEY = "alexnet_edu"
PACKAGE = Path(__file__).resolve().parents[1] / "alexnet_edu"
VERSION_LINE = re.compile(rb'(?m)^__version__ = .*$\n?')   # set by tools/set_release.py


def cell_source(cell) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _imported_here(text: str) -> set[str]:
    """Names of package modules that ``text`` (a notebook's code or a module's source) imports."""
    names = set(re.findall(r"^\s*(?:from|import) alexnet_edu\.(\w+)", text, re.M))   # alexnet_edu.data
    names |= set(re.findall(r"^\s*from \.(\w+) import", text, re.M))        # from .data import ...
    for group in re.findall(r"^\s*from \. import ([\w, ]+)", text, re.M):   # from . import models
        names |= {name.strip() for name in group.split(",")}
    if re.search(r"\balexnet_edu\b", text):
        names.add("__init__")     # importing any submodule runs the package's __init__ first
    return names


def imported_modules(notebook, package: Path = PACKAGE) -> list[Path]:
    """The package's modules a notebook's code runs: what it imports, and what those import."""
    code = "\n".join(cell_source(c) for c in notebook["cells"] if c["cell_type"] == "code")
    todo, found = _imported_here(code), set()
    while todo:
        name = todo.pop()
        path = package / f"{name}.py"
        if name in found or not path.exists():
            continue
        found.add(name)
        todo |= _imported_here(path.read_text())
    return sorted(package / f"{name}.py" for name in found)


def trains_a_network(code: str) -> bool:
    """Whether notebook code trains a network (calls ``fit`` or ``ablate``): such a cell may run long, and a
    chapter with one shows outputs from a GPU."""
    return re.search(r"(?<![\w.])(fit|ablate)\(", code) is not None


def is_colab_setup(cell) -> bool:
    return cell_source(cell).startswith("# Setup:")


def code_hash(notebook, package: Path = PACKAGE) -> str:
    """sha256 over the package modules the notebook runs (sorted by name) and its code-cell sources,
    the Colab setup cell and the package's version line left out."""
    digest = hashlib.sha256()
    for path in imported_modules(notebook, package):
        digest.update(f"file {path.name}\n".encode())
        digest.update(VERSION_LINE.sub(b"", path.read_bytes()))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and not is_colab_setup(cell):
            digest.update(b"\ncell\n")
            digest.update(cell_source(cell).encode())
    return digest.hexdigest()


def stamp_of(notebook) -> dict:
    """The notebook's stamp, or {} if it was never executed by tools/execute_notebooks.py."""
    return dict(notebook.get("metadata", {}).get(KEY) or {})
