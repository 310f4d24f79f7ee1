import json

import pytest
import torch
from torch import nn

from alexnet_edu.data import FashionMNIST
from alexnet_edu.models import alexnet
from alexnet_edu import train
from alexnet_edu.train import History, amp_dtype, evaluate, fit


def easy_data(n_train=96, n_test=40):
    """Classes that differ in brightness: learnable in a few steps."""
    g = torch.Generator().manual_seed(0)

    def make(n):
        labels = torch.arange(n) % 4
        images = (labels[:, None, None, None] * 60 + torch.randint(0, 20, (n, 1, 28, 28), generator=g)).to(torch.uint8)
        return images, labels

    return FashionMNIST(*make(n_train), *make(n_test), source="synthetic")


def small_model(dropout=0.0):
    torch.manual_seed(0)
    return alexnet(num_classes=4, image_size=72, width=0.25, dropout=dropout)


def test_fit_lowers_the_loss_and_records_history(tmp_path):
    # 20 short epochs of 6 steps: AlexNet sits near ln(4) for its first few dozen steps.
    history = fit(small_model(), easy_data(), profile="smoke", epochs=20, batch_size=16, resolution=72,
                  lr=0.02, out=tmp_path, progress=False, device="cpu")
    assert history.epochs == 20
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.test_acc[-1] > 0.5
    assert history.device == "cpu" and history.profile == "smoke"
    assert all(v > 0 for v in history.images_per_s)
    saved = History.load(tmp_path / "history.json")
    assert saved == history
    assert json.loads((tmp_path / "history.json").read_text())["settings"]["resolution"] == 72


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a GPU: checks that dropout's CUDA generator is restored"))])
def test_resume_continues_from_the_saved_epoch(tmp_path, device):
    data = easy_data()     # with dropout, so that resuming must restore the random generators
    full = fit(small_model(dropout=0.5), data, profile="smoke", epochs=3, resolution=72, out=tmp_path / "a",
               progress=False, device=device)
    # interrupted after 2 epochs, then resumed: the same run as training 3 epochs straight
    fit(small_model(dropout=0.5), data, profile="smoke", epochs=2, resolution=72, out=tmp_path / "b",
        progress=False, device=device)
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert (state["cuda_rng"] is None) == (device == "cpu")
    if device == "cpu":
        assert state["scaler"] == {}          # fp32 on a CPU: no loss scale to keep
        del state["scaler"], state["cuda_rng"]    # as in checkpoints written before there were these
        torch.save(state, tmp_path / "b" / "checkpoint.pt")
    resumed_model = small_model(dropout=0.5)
    resumed = fit(resumed_model, data, profile="smoke", epochs=3, resolution=72, out=tmp_path / "b",
                  resume=True, progress=False, device=device)
    assert resumed.epochs == 3
    assert resumed.train_loss[:2] == full.train_loss[:2]
    assert resumed.train_loss[2] == pytest.approx(full.train_loss[2], rel=1e-4)
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["history"]["train_loss"] == resumed.train_loss


def test_mixed_precision_is_bf16_from_ampere_on_fp16_on_older_gpus_and_fp32_on_the_cpu(monkeypatch):
    assert amp_dtype(torch.device("cpu")) is None
    for capability, expected in [((7, 5), torch.float16),     # T4 (Colab's free GPU): bf16 only emulated
                                 ((8, 0), torch.bfloat16),    # A100
                                 ((9, 0), torch.bfloat16)]:   # H100
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert amp_dtype(torch.device("cuda")) == expected


def test_fp16_with_loss_scaling_trains_and_resumes_with_its_scale(tmp_path, monkeypatch):
    # What a T4 runs (fp16 autocast and a GradScaler), exercised here through CPU autocast.
    monkeypatch.setattr(train, "amp_dtype", lambda device: torch.float16)
    computed_in = set()
    model = small_model()
    model.classifier.register_forward_hook(lambda module, args, out: computed_in.add(out.dtype))
    data = easy_data()
    straight = fit(model, data, profile="smoke", epochs=12, batch_size=16, resolution=72, lr=0.02,
                   progress=False, device="cpu")
    assert computed_in == {torch.float16}
    assert straight.settings["precision"] == "float16"
    assert straight.train_loss[-1] < 0.5 * straight.train_loss[0]

    # stopped after 3 epochs, then resumed for a 4th: the straight run's first 4 (the learning rate is
    # constant, so how many epochs a run plans does not change its first ones)
    fit(small_model(), data, profile="smoke", epochs=3, batch_size=16, resolution=72, lr=0.02,
        out=tmp_path, progress=False, device="cpu")
    scaler = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["scaler"]
    # 3 epochs of 6 steps, none overflowed: the scale is still its initial 2**16, 18 steps into
    # the 2,000 it waits before doubling
    assert (scaler["scale"], scaler["_growth_tracker"]) == (2.0 ** 16, 18)
    resumed = fit(small_model(), data, profile="smoke", epochs=4, batch_size=16, resolution=72, lr=0.02,
                  out=tmp_path, resume=True, progress=False, device="cpu")
    assert resumed.train_loss[:3] == straight.train_loss[:3]
    assert resumed.train_loss[3] == pytest.approx(straight.train_loss[3], rel=1e-3)
    scaler = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["scaler"]
    assert scaler["_growth_tracker"] == 24          # counted on from the checkpoint, not from 0


def test_evaluate_counts_correct_predictions():
    data = easy_data()
    model = small_model()
    acc = evaluate(model, data.test_images, data.test_labels, resolution=72)
    with torch.no_grad():
        model.eval()
        from alexnet_edu.data import to_model_input
        expected = (model(to_model_input(data.test_images, 72)).argmax(1) == data.test_labels).float().mean().item()
    assert acc == pytest.approx(expected)


def test_ablate_trains_every_variant_per_seed_and_prints_the_recipe_once(capsys):
    from alexnet_edu.ablation import ablate, mean_and_spread
    from alexnet_edu.profiles import get_profile

    def build(**options):
        return lambda: alexnet(num_classes=4, image_size=72, width=0.25, **options)

    variants = {"with dropout": build(dropout=0.5), "without": build(dropout=0.0)}
    table, histories, models = ablate(variants, easy_data(), get_profile("smoke"), seeds=(0, 1),
                                      epochs=1, resolution=72, device="cpu")
    printed = capsys.readouterr().out
    assert printed.count("profile 'smoke'") == 1, printed
    assert "without, seed 1: train acc" in printed
    assert list(zip(table.variant, table.seed)) == [("with dropout", 0), ("with dropout", 1), ("without", 0), ("without", 1)]
    assert set(histories) == set(models) == set(zip(table.variant, table.seed))
    assert list(table["test acc"]) == [histories[key].test_acc[-1] for key in zip(table.variant, table.seed)]
    assert models["without", 0].classifier[2].p == 0.0 and models["with dropout", 0].classifier[2].p == 0.5
    # each run is seeded: the same variant and seed again gives the same numbers
    again, _, _ = ablate({"without": variants["without"]}, easy_data(), get_profile("smoke"), seeds=(1,),
                         epochs=1, resolution=72, device="cpu")
    assert again["train loss"][0] == table["train loss"][3]
    spread = mean_and_spread(table)
    assert list(spread.index) == ["with dropout", "without"]
    assert spread.loc["without", ("test acc", "mean")] == pytest.approx(table["test acc"][2:].mean(), abs=1e-4)


def test_ablate_prints_the_recipe_again_for_a_variant_that_changes_it(capsys):
    from alexnet_edu.ablation import ablate
    from alexnet_edu.profiles import get_profile

    build = lambda: alexnet(num_classes=4, image_size=72, width=0.25)  # noqa: E731
    ablate({"one epoch": build, "two epochs": build}, easy_data(), get_profile("smoke"), seeds=(0,),
           fit_options={"two epochs": {"epochs": 2}}, epochs=1, resolution=72, device="cpu")
    printed = capsys.readouterr().out
    assert printed.count("profile 'smoke'") == 2
    assert "1 epoch(s)" in printed and "2 epoch(s)" in printed


def test_fp16_skipped_first_step(monkeypatch):
    # Colab's T4 path: fp16, a gradient scaler and fused SGD. The scaler skips a step whose gradients
    # overflowed; when that is the very first step, fused SGD allocated its momentum buffers with
    # torch.empty_like and never wrote them. Fresh memory is made to hold garbage here, as it may.
    def run(make_optimizer):
        torch.manual_seed(0)
        model = nn.Linear(4, 2)
        optimizer = make_optimizer(model)
        scaler = torch.amp.GradScaler("cpu")
        x = torch.randn(8, 4)
        for scale in (float("inf"), 1.0):          # an overflow first, then an ordinary step
            optimizer.zero_grad()
            scaler.scale(model(x).sum() * scale).backward()
            scaler.step(optimizer)
            scaler.update()
        return [p.detach() for p in model.parameters()]

    plain = run(lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, foreach=False))
    monkeypatch.setattr(torch, "empty_like", lambda t, *args, **kwargs: torch.full_like(t, 1e30))
    ours = run(lambda m: train.sgd(m, lr=0.1, momentum=0.9, weight_decay=0.0, fused=True))
    for a, b in zip(ours, plain):
        torch.testing.assert_close(a, b)           # one plain SGD step, no garbage


def test_a_long_run_says_how_long_it_will_take(capsys, monkeypatch):
    clock = iter(range(0, 10**7, 100))           # every reading of the clock is 100 s later: a slow machine
    monkeypatch.setattr(train.time, "perf_counter", lambda: next(clock))
    fit(small_model(), easy_data(n_train=800), profile="smoke", epochs=2, batch_size=16, resolution=72,
        progress=True, live_plot=False, device="cpu")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("projected")]
    assert len(lines) == 1                      # once, 20 steps after the 10 of warm-up
    # 2 epochs of 800 images, 30 steps of 16 done: 1,120 to go, timed over steps 11 to 30 only
    assert "for the 1,120 training images still to go, at the speed of steps 11 to 30" in lines[0]


def test_the_projected_time_leaves_out_the_warm_up(monkeypatch, capsys):
    clock = iter([0.0, 100.0])   # warm-up done at 0 s; 20 steps of 16 images later, 100 s
    monkeypatch.setattr(train.time, "perf_counter", lambda: next(clock))
    warm_up = train._say_projected_time(None, 160, 3_200, torch.device("cpu"))
    assert warm_up == (0.0, 160) and capsys.readouterr().out == ""   # nothing said yet
    train._say_projected_time(warm_up, 480, 3_200, torch.device("cpu"))
    # 320 images in 100 s: the 2,720 still to go take 850 s, about 14 min
    assert "projected: about 14 min for the 2,720 training images still to go" in capsys.readouterr().out
    # a full run on a CPU: 600,000 images at 3.2 images/s take 52 hours, said in hours
    clock = iter([0.0, 100.0])
    train._say_projected_time(train._say_projected_time(None, 160, 600_480, torch.device("cpu")), 480, 600_480,
                              torch.device("cpu"))
    assert "projected: about 52.1 h for the 600,000 training images" in capsys.readouterr().out


def test_validation_split_holds_out_a_balanced_disjoint_part():
    from alexnet_edu.data import validation_split
    labels = torch.arange(1000) % 10
    kept, held = validation_split(labels, 100)
    assert len(held) == 100 and len(kept) == 900
    assert set(kept.tolist()).isdisjoint(held.tolist())
    assert set(kept.tolist()) | set(held.tolist()) == set(range(1000))
    assert torch.bincount(labels[held]).tolist() == [10] * 10
    with pytest.raises(ValueError, match="between 1 and 999"):
        validation_split(labels, 1000)


def test_the_plateau_schedule_reads_validation_accuracy_never_the_test_set(capsys):
    with pytest.raises(ValueError, match="validation_size"):
        fit(small_model(), easy_data(), profile="smoke", epochs=2, lr_drop_patience=0, device="cpu")
    history = fit(small_model(), easy_data(n_train=120), profile="smoke", epochs=6, batch_size=16,
                  resolution=72, lr=0.02, validation_size=24, lr_drop_patience=0, progress=False, device="cpu")
    printed = capsys.readouterr().out
    assert "96 training images" in printed and "24 training images held out for validation" in printed
    assert history.settings["train_size"] == 96 and history.settings["validation_size"] == 24
    assert len(history.val_acc) == len(history.test_acc) == 6
    # patience 0: the rate drops tenfold after every epoch whose validation accuracy beats no earlier one
    best = history.val_acc[0]
    for epoch in range(1, 5):
        improved = history.val_acc[epoch] > best * (1 + 1e-4)
        expected = history.lr[epoch] if improved else history.lr[epoch] / 10
        assert history.lr[epoch + 1] == pytest.approx(expected)
        best = max(best, history.val_acc[epoch])
    assert history.lr[-1] < history.lr[0], "the schedule was exercised: the rate dropped at least once"


def test_the_printed_recipe_says_when_momentum_or_weight_decay_is_not_the_papers(capsys):
    data = easy_data(n_train=64)
    fit(small_model(), data, profile="smoke", epochs=1, batch_size=32, resolution=72, progress=False,
        live_plot=False, device="cpu")
    assert "not the paper's" not in capsys.readouterr().out  # the paper's 0.9 and 0.0005
    fit(small_model(), data, profile="smoke", epochs=1, batch_size=32, resolution=72, progress=False,
        live_plot=False, device="cpu", momentum=0.0)
    printed = capsys.readouterr().out
    assert "Here momentum 0, not the paper's 0.9." in printed and "weight decay" not in printed
    fit(small_model(), data, profile="smoke", epochs=1, batch_size=32, resolution=72, progress=False,
        live_plot=False, device="cpu", momentum=0.0, weight_decay=0.0)
    assert "Here momentum 0, not the paper's 0.9. Here weight decay 0, not the paper's 0.0005." in \
        capsys.readouterr().out
