"""Training throughput: the d2l.ai pipeline against alexnet_edu's, in one run, on this machine.

    python benchmarks/throughput.py [--batches N] [--batch-size 128] [--options]

Both feed the same model (``alexnet_edu.models.alexnet()``, 1x224x224) for the same number of
batches. d2l: ``d2l.load_data_fashion_mnist(batch_size, resize=224)``, a DataLoader whose workers
resize every image with PIL, training in fp32. Ours: the whole dataset as one uint8 tensor on the
device, one resize call per batch there; on CUDA also channels_last, mixed precision (bf16, or
fp16 with a gradient scaler on GPUs older than Ampere) and fused SGD, as ``fit`` does.
Prints images/s for the data pipeline alone and for training, and the ratios.
``--options`` (for a GPU) then times our training again with one of those choices undone at a
time, and with cuDNN autotuning or ``torch.compile`` added, each against ours as ``fit`` runs it.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from alexnet_edu.d2l_pipeline import d2l_loaders
from alexnet_edu.data import batches, load_fashion_mnist
from alexnet_edu.models import alexnet
from alexnet_edu.train import autocast_for, default_device, grad_scaler_for, precision_name


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_data(make_iter, n: int, device: torch.device) -> float:
    """Images/s of producing ``n`` batches already on ``device`` (one warm-up batch not counted)."""
    it = iter(make_iter())
    x, _ = next(it)
    sync(device)
    start, seen = time.perf_counter(), 0
    for _ in range(n):
        x, y = next(it)
        x = x.to(device, non_blocking=True)
        seen += len(x)
    sync(device)
    return seen / (time.perf_counter() - start)


def time_training(make_iter, n: int, device: torch.device, *, channels_last: bool, amp: bool,
                  fused: bool, autotune: bool, compile: bool = False) -> float:
    """Images/s of ``n`` SGD steps on a fresh AlexNet fed by ``make_iter``, after one warm-up step
    (which is also when cuDNN autotunes and ``torch.compile`` compiles)."""
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = autotune
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = alexnet().to(device, memory_format=layout)
    step = torch.compile(model) if compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, fused=fused)
    scaler = grad_scaler_for(device) if amp else torch.amp.GradScaler(device.type, enabled=False)
    it = iter(make_iter())
    start, seen = None, 0
    for i in range(n + 1):
        if i == 1:
            sync(device)
            start = time.perf_counter()
        x, y = next(it)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        x = x.contiguous(memory_format=layout)
        with autocast_for(device) if amp else torch.autocast(device.type, enabled=False):
            loss = F.cross_entropy(step(x), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if i >= 1:
            seen += len(y)
    sync(device)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, help="timed batches per measurement (default: 3 on CPU, 50 on GPU)")
    parser.add_argument("--options", action="store_true", help="also time our training with each GPU "
                        "option undone, and with cuDNN autotuning or torch.compile added")
    args = parser.parse_args()
    device = default_device()
    if args.options and device.type != "cuda":
        parser.error("--options times GPU settings (channels_last, mixed precision, fused SGD, cuDNN "
                     "autotuning, torch.compile), which a run on the CPU does not use. Run it on a GPU")
    n = args.batches or (50 if device.type == "cuda" else 3)
    bs = args.batch_size
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; ours in {precision_name(device)}; batch {bs}; "
          f"{n} timed batches per figure; AlexNet 1x224x224")

    data = load_fashion_mnist(device=device)
    gen = torch.Generator().manual_seed(0)
    ours = lambda: batches(data.train_images, data.train_labels, bs, 224, shuffle=True, generator=gen)  # noqa: E731
    theirs_loader, _ = d2l_loaders(bs, resize=224)
    theirs = lambda: theirs_loader  # noqa: E731

    rows = []
    d_theirs = time_data(theirs, n * 4, device)
    d_ours = time_data(ours, n * 4, device)
    rows.append(("data pipeline only", d_theirs, d_ours))
    cuda = device.type == "cuda"
    as_fit = dict(channels_last=cuda, amp=cuda, fused=cuda, autotune=False)   # what fit() does on this device
    t_theirs = time_training(theirs, n, device, channels_last=False, amp=False, fused=False, autotune=False)
    t_ours = time_training(ours, n, device, **as_fit)
    rows.append(("training (data + model)", t_theirs, t_ours))

    print(f"{'images/s':<26}{'d2l':>12}{'alexnet_edu':>14}{'ratio':>9}")
    for label, a, b in rows:
        print(f"{label:<26}{a:>12,.0f}{b:>14,.0f}{b / a:>8.2f}x")
    if cuda:
        epoch = 60_000 / t_ours
        print(f"one 60,000-image epoch at our training rate: {epoch:.1f} s; 10 epochs: {10 * epoch:.0f} s (no eval)")
    if args.options:
        variants = [("NCHW, not channels_last", dict(as_fit, channels_last=False)),
                    ("fp32, not mixed precision", dict(as_fit, amp=False)),
                    ("SGD not fused (foreach)", dict(as_fit, fused=False)),
                    ("with cuDNN autotuning", dict(as_fit, autotune=True)),
                    ("with torch.compile", dict(as_fit, compile=True))]
        print(f"\n{'our training, one change':<30}{'images/s':>10}{'vs fit':>9}")
        print(f"{'as fit() runs it':<30}{t_ours:>10,.0f}{1:>8.2f}x")
        for label, options in variants:
            rate = time_training(ours, n, device, **options)
            print(f"{label:<30}{rate:>10,.0f}{rate / t_ours:>8.2f}x")


if __name__ == "__main__":
    main()
