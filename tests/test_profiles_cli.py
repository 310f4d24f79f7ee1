import json

import pytest
import torch

from alexnet_edu import cli
from alexnet_edu.profiles import PROFILES, get_profile

from conftest import write_tiny_fashion_mnist


def test_profile_choice(monkeypatch):
    monkeypatch.setenv("ALEXNET_EDU_PROFILE", "smoke")
    assert get_profile().name == "smoke"
    assert get_profile("full").name == "full"
    monkeypatch.delenv("ALEXNET_EDU_PROFILE")
    from alexnet_edu.profiles import default_profile_name
    assert get_profile().name == default_profile_name()
    with pytest.raises(ValueError, match="choose one of full, small-gpu, cpu, smoke"):
        get_profile("huge")


@pytest.mark.parametrize("capability, expected", [((7, 5), "small-gpu"), ((7, 0), "small-gpu"), ((8, 6), "small-gpu"),
                                                   ((8, 9), "small-gpu"), ((8, 0), "full"), ((9, 0), "full"),
                                                   ((10, 0), "full")])
def test_a_gpu_below_the_a100_class_gets_the_small_gpu_profile(monkeypatch, capability, expected):
    # T4 7.5, V100 7.0, A10 8.6, L4 8.9: a full run takes them several times as long as an A100 (8.0) or H100 (9.0)
    monkeypatch.delenv("ALEXNET_EDU_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert get_profile().name == expected
    small = PROFILES["small-gpu"]
    assert (small.train_size, small.test_size, small.epochs, small.batch_size) == (None, None, 10, 128)
    assert small.resolution == 96     # what it shrinks: (224 / 96) ** 2, about 5.4 times fewer pixels


def test_full_profile_is_d2ls_setting():
    full = PROFILES["full"]
    assert (full.train_size, full.resolution, full.epochs, full.batch_size, full.lr) == (None, 224, 10, 128, 0.01)


def test_cli_train_smoke_then_resume(isolated, tmp_path, capsys):
    folder = write_tiny_fashion_mnist(isolated / "data", n_train=60, n_test=30)
    out = tmp_path / "run"
    assert cli.main(["train", "--profile", "smoke", "--root", str(folder), "--out", str(out)]) == 0
    history = json.loads((out / "history.json").read_text())
    assert history["profile"] == "smoke" and len(history["test_acc"]) == 1
    assert "profile 'smoke'" in capsys.readouterr().out
    # the same folder again without --resume: refused before anything is read or written
    saved = (out / "checkpoint.pt").read_bytes()
    assert cli.main(["train", "--profile", "smoke", "--root", str(folder), "--out", str(out)]) == 2
    assert f"{out} already holds a run's checkpoint (after epoch 1): add --resume" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == saved
    assert cli.main(["train", "--profile", "smoke", "--epochs", "2", "--root", str(folder), "--out", str(out),
                     "--resume", "--save-convs"]) == 0
    assert "resumed from" in capsys.readouterr().out
    history = json.loads((out / "history.json").read_text())
    assert len(history["test_acc"]) == 2 and history["settings"]["commit"]
    # the saved fp16 convolutions load back into a fresh model
    from alexnet_edu.models import alexnet
    from alexnet_edu.reference import CONV_WEIGHTS, load_conv_weights
    model = load_conv_weights(alexnet(image_size=96), out / CONV_WEIGHTS)
    saved = torch.load(out / CONV_WEIGHTS, weights_only=True)
    assert saved["0.weight"].dtype == torch.float16
    assert torch.equal(model.features[0].weight, saved["0.weight"].float())


def test_cli_data_reports_missing_data_clearly(isolated, capsys):
    assert cli.main(["data", "--root", str(isolated / "nothing")]) == 2
    assert "does not hold the four Fashion-MNIST files" in capsys.readouterr().err


def test_cli_summary(capsys):
    assert cli.main(["summary", "--model", "alexnet_paper"]) == 0
    out = capsys.readouterr().out
    assert "60965224" in out and "96x55x55" in out


def test_ctrl_c_says_what_was_kept_and_a_gpu_profile_on_a_cpu_warns_first(isolated, tmp_path, capsys, monkeypatch):
    folder = write_tiny_fashion_mnist(isolated / "data", n_train=60, n_test=30)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "fit", interrupted)
    monkeypatch.setattr(cli, "default_device", lambda: torch.device("cpu"))
    fresh = tmp_path / "fresh"
    assert cli.main(["train", "--profile", "full", "--root", str(folder), "--out", str(fresh)]) == 130
    err = capsys.readouterr().err
    assert "the full profile is sized for a GPU; on this CPU it takes hours" in err
    assert f"interrupted before the first checkpoint (one is written after every epoch): nothing to resume in {fresh}" in err
    # a run with a checkpoint after epoch 3, interrupted on resuming: where to go on from
    fresh.mkdir()
    (fresh / "checkpoint.pt").write_bytes(b"stand-in")
    (fresh / "history.json").write_text(json.dumps({"train_loss": [2.0, 1.0, 0.5]}))
    assert cli.main(["train", "--profile", "smoke", "--root", str(folder), "--out", str(fresh), "--resume"]) == 130
    err = capsys.readouterr().err
    assert f"interrupted; the last checkpoint (after epoch 3) is in {fresh}: run the same command with --resume" in err
    assert "sized for a GPU" not in err
