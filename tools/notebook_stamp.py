"""The stamp an executed chapter carries in its metadata, and the hash that says whether it is stale.

``notebook.metadata["alexnet_edu"]`` records the profile the outputs were made in, the machine, the
torch version, how long the execution took, when, and ``code``: a hash of the package's sources and
the notebook's code cells. Prose (markdown) and outputs are left out of the hash, so editing a
chapter's text does not make its outputs stale; changing its code or the package's does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

KEY = "alexnet_edu"
PACKAGE = Path(__file__).resolve().parents[1] / "alexnet_edu"


def cell_source(cell) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def code_hash(notebook, package: Path = PACKAGE) -> str:
    """sha256 over ``package/*.py`` (sorted by name) and the notebook's code-cell sources."""
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(f"file {path.name}\n".encode())
        digest.update(path.read_bytes())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            digest.update(b"\ncell\n")
            digest.update(cell_source(cell).encode())
    return digest.hexdigest()


def stamp_of(notebook) -> dict:
    """The notebook's stamp, or {} if it was never executed by tools/execute_notebooks.py."""
    return dict(notebook.get("metadata", {}).get(KEY) or {})
