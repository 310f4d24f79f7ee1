"""Point the book at a release: set the version in pyproject.toml and alexnet_edu/__init__.py, and the
tag that every chapter's setup cell installs in Colab (``@v<version>``).

    python tools/set_release.py 0.2.0
    git commit -am "Release 0.2.0" && git tag v0.2.0 && git push origin main v0.2.0

A chapter opened in Colab then installs the package exactly as it was at that tag, so a course's
notebooks do not change under its students when main moves on. Changing only the setup cell does
not make a chapter's saved outputs stale (the cell does nothing outside Colab).
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUP_URL = re.compile(r'(url = "git\+https://github\.com/[^"@]+)(@v[\w.]+)?"')


def set_release(version: str) -> None:
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise SystemExit(f"{version!r}: give a version like 0.2.0")
    pyproject = ROOT / "pyproject.toml"
    pyproject.write_text(re.sub(r'(?m)^version = "[^"]+"', f'version = "{version}"', pyproject.read_text()))
    init = ROOT / "alexnet_edu" / "__init__.py"
    init.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{version}"', init.read_text()))
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        setup = next(c for c in notebook["cells"] if c["cell_type"] == "code")
        source = "".join(setup["source"])
        new = SETUP_URL.sub(rf'\1@v{version}"', source)
        if new == source and f"@v{version}" not in source:
            raise SystemExit(f"{path.name}: its first code cell has no install url to point at v{version}")
        lines = new.splitlines(keepends=True)
        setup["source"] = lines
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    print(f"version {version}; every chapter's setup cell installs @v{version}")


if __name__ == "__main__":
    if sys.argv[1:] in (["-h"], ["--help"]):
        print(__doc__)
        raise SystemExit(0)
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    set_release(sys.argv[1])
