import torch

from alexnet_edu.models import LocalResponseNorm, alexnet_paper
from alexnet_edu.two_gpus import run_in_processes, run_on_devices, split_towers


def paper_model_and_input():
    torch.manual_seed(0)
    model = alexnet_paper(num_classes=10).eval()
    x = torch.randn(2, 3, 227, 227) * 50   # the paper's inputs: raw pixel values minus the mean
    with torch.no_grad():
        return model, x, model(x)


def test_towers_hold_half_of_every_layer():
    model, _, _ = paper_model_and_input()
    towers = split_towers(model)
    per_tower = [sum(p.numel() for p in t.parameters()) for t in towers]
    assert per_tower[0] == per_tower[1]
    # both towers together hold exactly the grouped model's weights
    assert sum(per_tower) == sum(p.numel() for p in model.parameters())


def test_split_on_two_devices_equals_the_grouped_model():
    model, x, expected = paper_model_and_input()
    torch.testing.assert_close(run_on_devices(split_towers(model), x), expected, rtol=1e-5, atol=1e-5)


def test_split_in_two_processes_equals_the_grouped_model():
    model, x, expected = paper_model_and_input()
    torch.testing.assert_close(run_in_processes(split_towers(model), x), expected, rtol=1e-5, atol=1e-5)


def test_grouped_lrn_normalises_each_half_alone():
    a = torch.randn(1, 8, 2, 2, dtype=torch.float64) * 40
    grouped = LocalResponseNorm(groups=2)(a)
    halves = torch.cat([LocalResponseNorm()(a[:, :4]), LocalResponseNorm()(a[:, 4:])], 1)
    torch.testing.assert_close(grouped, halves)
    assert not torch.allclose(grouped, LocalResponseNorm()(a))   # channels 3 and 4 no longer neighbours
