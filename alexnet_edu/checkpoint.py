"""Checkpoints that survive a crash, a full disk and a wrong ``--resume``.

``fit`` writes one after every epoch, in three steps: the new checkpoint goes to ``checkpoint.tmp``;
the old ``checkpoint.pt`` is renamed ``checkpoint.prev.pt``; ``checkpoint.tmp`` is renamed
``checkpoint.pt``. A rename is all or nothing, so a process killed at any moment leaves at least one
complete checkpoint, and a write that fails (a full disk) leaves the previous one untouched.

Reading tries ``checkpoint.pt`` and falls back to ``checkpoint.prev.pt`` (one more epoch to redo)
when it is missing or cannot be read. ``torch.load(..., weights_only=True)`` reads only tensors and
plain values: unlike a general pickle, a checkpoint cannot run code when it is loaded.

Before a resumed run loads any weights, ``check_resume`` compares the model, the profile and the
recipe stored in the checkpoint with what was asked, and refuses to mix two runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

__all__ = ["CHECKPOINT", "PREVIOUS", "PARTIAL", "CheckpointError", "CheckpointWriteError",
           "ResumeMismatchError", "check_resume", "checkpoint_state", "read_checkpoint", "save_checkpoint"]

CHECKPOINT, PREVIOUS, PARTIAL = "checkpoint.pt", "checkpoint.prev.pt", "checkpoint.tmp"
KEYS = ("model", "optimizer", "history", "torch_rng", "shuffle_rng")   # what fit needs to resume
# Settings that must match to resume. epochs may grow (train on); machine and precision may change
# (a GPU run can go on on a CPU).
MUST_MATCH = ("model", "parameters", "lr", "batch_size", "resolution", "momentum", "weight_decay", "augment",
              "seed", "train_size", "test_size", "validation_size", "lr_drop_patience")
WHAT_TO_DO = ("Resume with the checkpoint's settings, or train into a new folder (--out on the command line, "
              "out= in fit).")


class CheckpointError(ValueError):
    """No checkpoint in the folder can be read."""


class ResumeMismatchError(ValueError):
    """The checkpoint was made with another model, profile or recipe than the one asked for."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (the previous one is left as it was)."""


def checkpoint_state(model, optimizer, plateau, scaler, history: dict, shuffle: torch.Generator,
                     device: torch.device) -> dict:
    """Everything a resumed run needs, copied to the CPU: weights, momentum, schedules, RNGs."""
    state = dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                 plateau=plateau.state_dict() if plateau is not None else None,
                 scaler=scaler.state_dict(), history=history,
                 torch_rng=torch.get_rng_state(), shuffle_rng=shuffle.get_state(),
                 cuda_rng=torch.cuda.get_rng_state(device) if device.type == "cuda" else None)
    return _copy_to_cpu(state)


def _copy_to_cpu(value):
    """A copy of ``value`` with every tensor in it copied to the CPU (nested dicts and lists)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _copy_to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_to_cpu(v) for v in value)
    return value


def save_checkpoint(folder: Path, state: dict) -> None:
    """Write ``state`` to ``folder/checkpoint.pt``, keeping the checkpoint it replaces as
    ``checkpoint.prev.pt``. A failure leaves both as they were and raises CheckpointWriteError."""
    folder.mkdir(parents=True, exist_ok=True)
    newest, tmp = folder / CHECKPOINT, folder / PARTIAL
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())   # on disk before the rename, so that a power cut cannot keep a hollow file
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        epoch = len(state["history"]["train_loss"])
        kept = (f"{newest}, the checkpoint before it, is untouched" if newest.exists()
                else "there is no earlier checkpoint")
        error = CheckpointWriteError(f"could not write the checkpoint after epoch {epoch} to {tmp} "
                                     f"({exc.strerror or exc}); {kept}")
        error.errno = exc.errno
        raise error from exc
    if newest.exists():
        os.replace(newest, folder / PREVIOUS)
    os.replace(tmp, newest)


def read_checkpoint(folder: Path, device: torch.device) -> tuple[dict, Path] | None:
    """The newest readable checkpoint in ``folder`` and its path; None when there is none at all.
    Falls back to ``checkpoint.prev.pt``, saying so; raises CheckpointError when neither can be read."""
    newest, previous = folder / CHECKPOINT, folder / PREVIOUS
    if not newest.exists() and not previous.exists():
        return None
    problems = []
    for path in (newest, previous):
        try:
            state = _load(path, device)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if problems:
            print(f"{problems[0]}; resuming from the previous checkpoint, {path}, instead "
                  f"(one more epoch to train again)", file=sys.stderr)
        return state, path
    raise CheckpointError(f"no checkpoint in {folder} can be read:\n  " + "\n  ".join(problems) +
                          "\nTrain into a new --out folder, or delete both files to start this run again.")


def _load(path: Path, device: torch.device) -> dict:
    if not path.exists():
        raise CheckpointError(f"{path} is missing (the run stopped while replacing it)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:   # a truncated zip, garbage, an empty file, a pickle with code in it
        if "GLOBAL" in str(exc):
            raise CheckpointError(f"{path} was refused: it holds Python objects other than tensors and plain "
                                  f"values, and loading those could run any code") from None
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} cannot be read, it is damaged or cut short ({reason[:120]})") from None
    if not isinstance(state, dict) or not all(key in state for key in KEYS) or not isinstance(state["history"], dict):
        raise CheckpointError(f"{path} is not a checkpoint written by fit (it lacks {', '.join(KEYS)})")
    return state


def check_resume(state: dict, path: Path, *, profile: str, epochs: int, settings: dict) -> None:
    """Raise ResumeMismatchError listing every way the checkpoint differs from the run asked for.
    Settings a checkpoint does not record (older checkpoints) are not compared."""
    saved = state["history"]
    differences = []
    if saved.get("profile") and saved["profile"] != profile:
        differences.append(f"profile: checkpoint has {saved['profile']}, you asked for {profile}")
    for key in MUST_MATCH:
        if key in saved.get("settings", {}) and saved["settings"][key] != settings[key]:
            differences.append(f"{key}: checkpoint has {saved['settings'][key]}, you asked for {settings[key]}")
    done = len(saved["train_loss"])
    if epochs < done:
        differences.append(f"epochs: checkpoint has {done} done already, you asked for {epochs} in all "
                           f"(ask for {done} or more)")
    if differences:
        raise ResumeMismatchError(f"cannot resume from {path}: it was made with other settings.\n  " +
                                  "\n  ".join(differences) + f"\n{WHAT_TO_DO} Nothing in {path.parent} was changed.")
