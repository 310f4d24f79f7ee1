"""Resuming is safe (issue 18): a checkpoint that does not fit the run asked for is refused before
anything loads, a damaged one falls back to the previous one, an unsafe pickle never runs, a failed
write keeps the last good checkpoint, and a run killed at random moments resumes to the same weights.
Every bad input goes through the ``alexnet-edu`` command, as a reader would type it."""

import errno
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from alexnet_edu import cli
from alexnet_edu.checkpoint import CHECKPOINT, PARTIAL, PREVIOUS
from alexnet_edu.train import fit

from conftest import write_tiny_fashion_mnist
from test_train import easy_data, small_model

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """Data, and a two-epoch smoke run trained through the command: checkpoint.pt holds epoch 2,
    checkpoint.prev.pt epoch 1."""
    folder = tmp_path_factory.mktemp("resume")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALEXNET_EDU_CACHE", str(folder / "cache"))
        data = write_tiny_fashion_mnist(folder / "data", n_train=60, n_test=30)
        assert cli.main(["train", "--profile", "smoke", "--epochs", "2", "--root", str(data),
                         "--out", str(folder / "run")]) == 0
        yield data, folder / "run"


@pytest.fixture
def run(finished_run, tmp_path, monkeypatch):
    """A copy of the finished run, and a function that calls the command on it."""
    data, original = finished_run
    monkeypatch.setenv("ALEXNET_EDU_CACHE", str(original.parent / "cache"))
    out = tmp_path / "run"
    shutil.copytree(original, out)

    def train(*options):
        return cli.main(["train", "--root", str(data), "--out", str(out), *options])

    train.out = out
    return train


def fingerprint(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def epochs_in(path):
    return len(torch.load(path, weights_only=True)["history"]["train_loss"])


def test_the_run_keeps_the_previous_checkpoint_and_loads_weights_only(finished_run):
    _, out = finished_run
    assert sorted(p.name for p in out.iterdir()) == sorted([CHECKPOINT, PREVIOUS, "history.json"])
    assert (epochs_in(out / CHECKPOINT), epochs_in(out / PREVIOUS)) == (2, 1)


def refused(capsys, *lines):
    """The command's stderr ends in one message holding each of ``lines``, and has no traceback
    (progress bars may come before it)."""
    err = capsys.readouterr().err
    assert err.count("alexnet-edu: ") == 1 and "Traceback" not in err, err
    message = err[err.index("alexnet-edu: "):]
    for line in lines:
        assert line in message, (line, message)
    return message


def test_resume_with_another_model_is_refused_before_loading(run, capsys):
    before = fingerprint(run.out)
    assert run("--model", "lenet", "--profile", "smoke", "--epochs", "2", "--resume") == 2
    refused(capsys, f"cannot resume from {run.out / CHECKPOINT}",
            "model: checkpoint has AlexNet, you asked for Sequential",
            "parameters: checkpoint has ", "resolution: checkpoint has 96, you asked for 28",
            "Resume with the checkpoint's settings, or train into a new folder (--out on the command line",
            f"Nothing in {run.out} was changed")
    assert fingerprint(run.out) == before


def test_resume_with_another_profile_or_recipe_lists_every_difference(run, capsys):
    before = fingerprint(run.out)
    # the cpu profile's recipe differs from smoke's only in its subset sizes, which 60 images cap
    assert run("--profile", "cpu", "--resume") == 2
    err = refused(capsys, "profile: checkpoint has smoke, you asked for cpu")
    assert err.count(": checkpoint has") == 1
    assert run("--profile", "cpu", "--lr", "0.05", "--seed", "3", "--augment", "--resume") == 2
    err = refused(capsys, "profile: checkpoint has smoke, you asked for cpu",
                  "lr: checkpoint has 0.02, you asked for 0.05", "seed: checkpoint has 0, you asked for 3",
                  "augment: checkpoint has False, you asked for True")
    assert fingerprint(run.out) == before


def test_resume_with_fewer_epochs_than_done_says_so(run, capsys):
    before = fingerprint(run.out)
    assert run("--profile", "smoke", "--epochs", "1", "--resume") == 2
    refused(capsys, "epochs: checkpoint has 2 done already, you asked for 1 in all (ask for 2 or more)")
    assert fingerprint(run.out) == before


def test_a_truncated_checkpoint_falls_back_to_the_previous_one(run, capsys):
    newest = run.out / CHECKPOINT
    newest.write_bytes(newest.read_bytes()[:5000])      # a copy cut short
    assert run("--profile", "smoke", "--epochs", "3", "--resume") == 0
    printed = capsys.readouterr()
    assert f"{newest} cannot be read, it is damaged or cut short" in printed.err
    assert f"resuming from the previous checkpoint, {run.out / PREVIOUS}, instead (one more epoch" in printed.err
    assert f"resumed from {run.out / PREVIOUS} after epoch 1" in printed.out
    # epochs 2 and 3 trained again; both files readable again, the newest first
    assert (epochs_in(newest), epochs_in(run.out / PREVIOUS)) == (3, 2)


def test_two_unreadable_checkpoints_stop_with_both_named(run, capsys):
    (run.out / CHECKPOINT).write_bytes((run.out / CHECKPOINT).read_bytes()[:-100])
    (run.out / PREVIOUS).write_bytes(b"not a checkpoint at all" * 10)
    before = fingerprint(run.out)
    assert run("--profile", "smoke", "--epochs", "3", "--resume") == 2
    refused(capsys, f"no checkpoint in {run.out} can be read",
            f"{run.out / CHECKPOINT} cannot be read", f"{run.out / PREVIOUS} cannot be read",
            "Train into a new --out folder")
    assert fingerprint(run.out) == before


def test_a_checkpoint_of_the_wrong_content_is_not_a_checkpoint(run, capsys):
    torch.save(small_model().state_dict(), run.out / CHECKPOINT)   # weights alone: loads, but is no checkpoint
    (run.out / PREVIOUS).unlink()
    assert run("--profile", "smoke", "--epochs", "3", "--resume") == 2
    refused(capsys, f"{run.out / CHECKPOINT} is not a checkpoint written by fit")


class RunsCode:
    """Unpickling this calls open(marker, 'w'): what a malicious checkpoint could do, harmlessly."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_is_not_weights_only_is_refused_and_runs_nothing(run, capsys, tmp_path):
    marker = tmp_path / "code-ran"
    state = torch.load(run.out / CHECKPOINT, weights_only=True)
    state["history"]["device"] = RunsCode(marker)
    torch.save(state, run.out / CHECKPOINT)
    (run.out / PREVIOUS).unlink()
    assert run("--profile", "smoke", "--epochs", "3", "--resume") == 2
    refused(capsys, f"{run.out / CHECKPOINT} was refused: it holds Python objects other than tensors")
    assert not marker.exists()
    torch.load(run.out / CHECKPOINT, weights_only=False)["history"]["device"].close()   # trusted, it does run code
    assert marker.exists()


def test_a_failed_write_keeps_the_previous_checkpoint_and_says_why(run, capsys, monkeypatch):
    shutil.rmtree(run.out)
    real_save, calls = torch.save, []

    def disk_full_on_the_second(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_on_the_second)
    assert run("--profile", "smoke", "--epochs", "3") == 2
    refused(capsys, f"could not write the checkpoint after epoch 2 to {run.out / PARTIAL}",
            "No space left on device", f"{run.out / CHECKPOINT}, the checkpoint before it, is untouched")
    assert sorted(p.name for p in run.out.iterdir()) == [CHECKPOINT, "history.json"]
    assert epochs_in(run.out / CHECKPOINT) == 1
    monkeypatch.setattr(torch, "save", real_save)
    assert run("--profile", "smoke", "--epochs", "3", "--resume") == 0   # space again: it goes on
    assert "resumed from" in capsys.readouterr().out and epochs_in(run.out / CHECKPOINT) == 3


# The training processes: forked, each run with resume=True, from one Python process that has
# imported torch and the package once (an import costs seconds; a fork, none). SLOW (seconds)
# stretches each checkpoint write: half its bytes, a pause, the rest; and a pause before each
# rename. Kills then land in the middle of a write, or between the two renames, often enough to test.
TRAINER = """
import io, os, sys, time
import torch
sys.path.insert(0, sys.argv[1])
from test_train import easy_data, small_model
from alexnet_edu.train import fit

slow, epochs = float(sys.argv[2]), int(sys.argv[3])
real_save, real_replace = torch.save, os.replace

def slow_save(obj, f, *args, **kwargs):
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    f.write(data[:len(data) // 2])
    f.flush()
    time.sleep(slow)
    f.write(data[len(data) // 2:])

def slow_replace(source, target):
    time.sleep(slow / 2)
    real_replace(source, target)

torch.save, os.replace = slow_save, slow_replace
while line := sys.stdin.readline():      # one line per run: its --out folder and a log file
    out, log = line.split()
    pid = os.fork()
    if pid == 0:                          # the training process
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = 0
        try:
            fit(small_model(dropout=0.5), easy_data(), profile="smoke", epochs=epochs, resolution=72, out=out,
                resume=True, progress=False, describe=False, device="cpu")
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(pid, flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""
EPOCHS, SLOW = 8, 0.15


def stamp(path):
    return (path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else None


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def wait_for(pid, condition, timeout=60.0):
    """Poll every 2 ms until ``condition()`` holds (True) or the process has ended (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if not alive(pid):
            return False
        time.sleep(0.002)
    raise AssertionError("the training process neither reached the moment nor ended")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks its training processes")
def test_killed_at_random_moments_it_resumes_to_the_same_weights(tmp_path):
    trainer = subprocess.Popen([sys.executable, "-c", TRAINER, str(TESTS), str(SLOW), str(EPOCHS)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    straight = small_model(dropout=0.5)        # meanwhile, the uninterrupted run, for comparison
    expected = fit(straight, easy_data(), profile="smoke", epochs=EPOCHS, resolution=72, progress=False,
                   describe=False, device="cpu")

    out = tmp_path / "run"
    newest, previous, partial = out / CHECKPOINT, out / PREVIOUS, out / PARTIAL
    rng = random.Random(18)
    moments = ["mid-write", "between renames", "at a random time", "mid-write", "at a random time",
               "between renames"]
    killed, logs, pid = [], [], None

    def start():
        logs.append(tmp_path / f"run{len(logs)}.log")
        trainer.stdin.write(f"{out} {logs[-1]}\n")
        trainer.stdin.flush()
        return int(trainer.stdout.readline())

    def ended():
        return int(trainer.stdout.readline())

    try:
        for moment in moments:
            old_partial, old_history = stamp(partial), stamp(out / "history.json")   # what earlier runs left
            pid = start()
            if moment == "mid-write":            # the new checkpoint half written, the old one in place
                reached = wait_for(pid, lambda: stamp(partial) not in (None, old_partial))
                time.sleep(rng.uniform(0, SLOW / 3))
            elif moment == "between renames":    # checkpoint.pt renamed to prev, the new one not yet in place
                reached = wait_for(pid, lambda: stamp(partial) not in (None, old_partial)
                                   and previous.exists() and not newest.exists())
            else:                                # any moment after this process has finished an epoch
                reached = wait_for(pid, lambda: stamp(out / "history.json") not in (None, old_history))
                time.sleep(rng.uniform(0, 0.5))
                reached = reached and alive(pid)
            if reached:
                os.kill(pid, signal.SIGKILL)
                killed.append((moment, newest.exists(), previous.exists(), partial.exists()))
            assert ended() == (-signal.SIGKILL if reached else 0), logs[-1].read_text()
            if moment == "mid-write" and reached:
                with pytest.raises(Exception):   # cut short: a checkpoint that cannot be read
                    torch.load(partial, weights_only=True)
        runs = 0
        while not newest.exists() or epochs_in(newest) < EPOCHS:   # resumed until done
            pid = start()
            assert ended() == 0, logs[-1].read_text()
            runs += 1
    finally:
        trainer.stdin.close()
        trainer.wait(timeout=30)
    assert runs == 1

    assert [k[0] for k in killed] == moments, killed       # every kill landed where it was meant to
    assert killed[1][1:3] == (False, True)                 # only checkpoint.prev.pt was complete there
    printed = "".join(log.read_text() for log in logs)
    assert f"{newest} is missing (the run stopped while replacing it); resuming from the previous checkpoint" in printed
    assert "Traceback" not in printed
    state = torch.load(newest, weights_only=True)
    assert state["history"]["train_loss"] == expected.train_loss
    assert state["model"].keys() == straight.state_dict().keys()
    assert all(torch.equal(state["model"][k], v) for k, v in straight.state_dict().items())
