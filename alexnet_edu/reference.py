"""The book's reference run: a GPU training in the full profile whose History and convolutional
weights (fp16, a few MB) are kept in ``book/data/reference/`` so that a CPU reader can see them.

Record one on a GPU with::

    alexnet-edu train --model alexnet --profile full --out book/data/reference --save-convs

which writes ``history.json`` (with machine, commit and wall time in its settings) and
``conv_weights_fp16.pt``; the training checkpoint it also writes there is not committed.

A chapter finds the run with :func:`find_reference_run`: in ``data/reference/`` beside it, or, where the
chapter came alone (Colab installs the package from GitHub, not the book's folders), in the repository
and commit the package was installed from.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import torch
from torch import nn

from .data import cache_dir

__all__ = ["CONV_WEIGHTS", "find_reference_run", "git_commit", "installed_from_github", "load_conv_weights",
           "save_conv_weights"]

CONV_WEIGHTS = "conv_weights_fp16.pt"
FILES = ("history.json", CONV_WEIGHTS)
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/book/data/reference/{name}"
_FAILED: set[tuple[str, str] | None] = set()   # (repo, commit) that failed, or None (no source): not tried again


def find_reference_run(folder: str | os.PathLike = "data/reference") -> Path | None:
    """The folder that holds the reference run's ``history.json`` and fp16 convolutions, or None.

    ``folder`` (relative to the chapter) when it has both files. Otherwise, when the package was
    installed from a GitHub repository (``pip install git+https://github.com/...``, as the chapters'
    Colab setup cell does), the two files of the very commit that was installed, downloaded once into
    the cache. None when neither has them, with a warning that says why (no copy of the book's folder
    and an install from elsewhere; no network; a commit from before the run was recorded; a fork or a
    renamed repository), once: a search that failed is not tried again in the same Python process.
    """
    local = Path(folder)
    if all((local / name).exists() for name in FILES):
        return local
    source = installed_from_github()
    if source in _FAILED:
        return None
    if source is None:
        _FAILED.add(source)
        warnings.warn(f"no reference run shown: {local}/ is not beside this chapter (the book keeps it in "
                      f"book/data/reference/), and this package was not installed from GitHub, so the run "
                      f"of its commit cannot be downloaded either")
        return None
    repo, commit = source
    cached = cache_dir() / "reference" / commit
    cached.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if (cached / name).exists():
            continue
        url = RAW_URL.format(repo=repo, commit=commit, name=name)
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                data = response.read()
        except urllib.error.HTTPError as error:
            _FAILED.add(source)
            why = (f"{repo} has no reference run at commit {commit[:7]} (recorded later?), or the repository "
                   f"moved (a fork or a rename)" if error.code == 404 else str(error))
            warnings.warn(f"no reference run shown: {url} gave HTTP {error.code}: {why}")
            return None
        except OSError as error:     # no network, a timeout
            _FAILED.add(source)
            warnings.warn(f"no reference run shown: could not download the reference run from {url} ({error}); "
                          f"offline? It will not be tried again in this Python session")
            return None
        partial = cached / f"{name}.part"   # renamed when complete: an interrupted download is not used
        partial.write_bytes(data)
        partial.replace(cached / name)
    return cached


def installed_from_github() -> tuple[str, str] | None:
    """``("owner/name", commit)`` when pip installed this package from a GitHub repository, else None
    (an editable checkout, a wheel, a source folder). Read from pip's record of the install (PEP 610)."""
    try:
        record = importlib.metadata.distribution("alexnet-edu").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    info = json.loads(record) if record else {}
    match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)(?:\.git)?/?", info.get("url", ""))
    commit = info.get("vcs_info", {}).get("commit_id")
    return (match.group(1), commit) if match and commit else None


def save_conv_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Save the ``features`` part of ``model`` (all its convolutions) in fp16."""
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.features.state_dict().items()}
    torch.save(state, path)


def load_conv_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load weights saved by :func:`save_conv_weights` into ``model.features`` (as fp32)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.features.load_state_dict({k: v.float() for k, v in state.items()})
    return model


def git_commit() -> str:
    """The commit of the code that is running: ``ALEXNET_EDU_COMMIT`` where set (a copy of the tree
    whose .git is missing or stale, as on a borrowed GPU machine), else git's, else 'unknown'."""
    if os.environ.get("ALEXNET_EDU_COMMIT"):
        return os.environ["ALEXNET_EDU_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
