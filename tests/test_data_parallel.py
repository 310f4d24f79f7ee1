import re

import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from alexnet_edu import alexnet
from alexnet_edu.data_parallel import launch

TINY = ["--train-size", "64", "--test-size", "20", "--resolution", "96", "--batch-size", "32",
        "--steps", "2", "--lr", "0.01", "--dropout", "0", "--log-every", "1"]


def test_two_processes_take_the_same_steps_as_one(tmp_path):
    printed, params = {}, {}
    for n in (1, 2):
        printed[n] = launch(n, TINY + ["--save", str(tmp_path / f"{n}.pt")])
        params[n] = torch.load(tmp_path / f"{n}.pt")
    assert "batch 32 = 2 x 16" in printed[2] and "batch 32 = 1 x 32" in printed[1]
    assert f"weights saved in {tmp_path / '2.pt'}" in printed[2]
    # every gradient crosses between the processes once per step
    torch.manual_seed(0)
    initial = alexnet(image_size=96).state_dict()
    count = sum(v.numel() for v in initial.values())
    for n in (1, 2):
        assert f"gradients all-reduced per step: {count:,} floats" in printed[n]
    losses = [re.findall(r"loss (\d\.\d+)", printed[n]) for n in (1, 2)]
    assert len(losses[0]) == 2 and losses[0] == losses[1]
    moved = max((params[1][k] - initial[k]).abs().max() for k in initial)
    differ = max((params[1][k] - params[2][k]).abs().max() for k in initial)
    assert moved > 1e-5            # the two steps changed the weights...
    assert differ < 1e-3 * moved   # ...and the two runs changed them alike, up to rounding


def test_ranks_batches_together_are_the_single_process_batch():
    n, batch, world = 40, 8, 2
    single = list(DistributedSampler(range(n), num_replicas=1, rank=0, shuffle=True, seed=3))
    ranks = [list(DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=True, seed=3)) for r in range(world)]
    local = batch // world
    for i in range(n // batch):
        together = sorted(sum((r[i * local:(i + 1) * local] for r in ranks), []))
        assert together == sorted(single[i * batch:(i + 1) * batch])


def test_averaging_the_halves_gradients_is_the_whole_batch_gradient():
    torch.manual_seed(0)
    model = alexnet(image_size=65, width=0.25, dropout=0.0).double()
    x, y = torch.randn(8, 1, 65, 65, dtype=torch.float64), torch.arange(8) % 10

    def grads(reduction, *parts):
        out = []
        for part in parts:
            model.zero_grad()
            F.cross_entropy(model(x[part]), y[part], reduction=reduction).backward()
            out.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        return out

    (whole,) = grads("mean", slice(0, 8))
    halves = grads("mean", slice(0, 4), slice(4, 8))
    torch.testing.assert_close((halves[0] + halves[1]) / 2, whole)   # what DDP computes
    (whole_sum,) = grads("sum", slice(0, 8))
    halves_sum = grads("sum", slice(0, 4), slice(4, 8))
    torch.testing.assert_close((halves_sum[0] + halves_sum[1]) / 2, whole_sum / 2)   # a sum loss: half the step
