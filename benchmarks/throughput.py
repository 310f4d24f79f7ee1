"""Training throughput: the d2l.ai pipeline against alexnet_edu's, in one run, on this machine.

    python benchmarks/throughput.py [--batches N] [--batch-size 128] [--options] [--concurrent N]

Both feed the same model (``alexnet_edu.models.alexnet()``, 1x224x224) for the same number of
batches. d2l: ``d2l.load_data_fashion_mnist(batch_size, resize=224)``, a DataLoader whose workers
resize every image with PIL, training in fp32. Ours: the whole dataset as one uint8 tensor on the
device, one resize call per batch there; on CUDA also channels_last, mixed precision (bf16, or
fp16 with a gradient scaler on GPUs older than Ampere), fused SGD and conv1 as a space-to-depth
convolution (``alexnet_edu.space_to_depth``), as ``fit`` does.
Prints images/s for the data pipeline alone and for training, and the ratios.
``--options`` (for a GPU) then times our training again with one of those choices undone at a
time, and with cuDNN autotuning or ``torch.compile`` added, each against ours as ``fit`` runs it,
and times evaluation in batches of 256 and 1,024.
``--concurrent N`` (for a GPU) times N trainings at once, each in its own process, against one alone.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from alexnet_edu.d2l_pipeline import d2l_loaders
from alexnet_edu.data import batches, load_fashion_mnist
from torch import nn

from alexnet_edu.models import LocalResponseNorm, alexnet
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
                  fused: bool, autotune: bool, compile: bool = False, space_to_depth: bool = True,
                  lrn: bool = False, compile_lrn: bool = False) -> float:
    """Images/s of ``n`` SGD steps on a fresh AlexNet fed by ``make_iter``, after one warm-up step
    (which is also when cuDNN autotunes and ``torch.compile`` compiles). ``lrn=True`` adds the paper's
    LRN after conv1 and conv2 (as the LRN chapter trains); ``compile_lrn`` compiles only its arithmetic."""
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = autotune
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = alexnet(lrn=lrn)
    if compile_lrn:   # one fused kernel for LRN's dozen elementwise passes, instead of one kernel each
        for module in model.modules():
            if isinstance(module, LocalResponseNorm):
                module._normalise = torch.compile(module._normalise)
    if not space_to_depth:   # conv1 as the plain 11x11, stride-4 convolution
        plain = nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1)
        plain.load_state_dict(model.features[0].state_dict())
        model.features[0] = plain
    model = model.to(device, memory_format=layout)
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


def time_evaluation(data, device: torch.device, batch_size: int, repeats: int = 3) -> float:
    """Images/s of ``evaluate`` on the 10,000 test images at 224 px (after one warm-up pass)."""
    from alexnet_edu.train import evaluate
    model = alexnet().to(device, memory_format=torch.channels_last if device.type == "cuda" else torch.contiguous_format)
    evaluate(model, data.test_images, data.test_labels, resolution=224, batch_size=batch_size)
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        evaluate(model, data.test_images, data.test_labels, resolution=224, batch_size=batch_size)
    sync(device)
    return repeats * len(data.test_labels) / (time.perf_counter() - start)


def _train_alone(rank: int, n: int, batch_size: int, start, rates) -> None:
    """One of ``--concurrent``'s processes: our training as fit runs it, timed after a shared start."""
    device = default_device()
    data = load_fashion_mnist(device=device)
    gen = torch.Generator().manual_seed(rank)
    ours = lambda: batches(data.train_images, data.train_labels, batch_size, 224, shuffle=True, generator=gen)  # noqa: E731
    time_training(ours, 3, device, channels_last=True, amp=True, fused=True, autotune=False)   # warm up
    start.wait()
    began = time.time()
    time_training(ours, n, device, channels_last=True, amp=True, fused=True, autotune=False)
    rates[rank] = (n * batch_size, began, time.time())


def time_concurrent(k: int, n: int, batch_size: int) -> float:
    """Images/s of ``k`` trainings run at once, one process each, on the same GPU: all their
    images over the time from the first one's start to the last one's end."""
    ctx = torch.multiprocessing.get_context("spawn")
    start, rates = ctx.Barrier(k), ctx.Manager().dict()
    procs = [ctx.Process(target=_train_alone, args=(r, n, batch_size, start, rates)) for r in range(k)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    runs = [rates[r] for r in range(k)]
    return sum(seen for seen, _, _ in runs) / (max(end for _, _, end in runs) - min(began for _, began, _ in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, help="timed batches per measurement (default: 3 on CPU, 50 on GPU)")
    parser.add_argument("--options", action="store_true", help="also time our training with each GPU "
                        "option undone, and with cuDNN autotuning or torch.compile added")
    parser.add_argument("--no-compile", action="store_true", help="with --options, leave out torch.compile "
                        "(its compilation alone takes tens of seconds)")
    parser.add_argument("--concurrent", type=int, metavar="N", help="also time N trainings at once on the GPU")
    args = parser.parse_args()
    device = default_device()
    if args.options and device.type != "cuda":
        parser.error("--options times GPU settings (channels_last, mixed precision, fused SGD, space-to-depth "
                     "conv1, cuDNN autotuning, torch.compile), which a run on the CPU does not use. Run it on a GPU")
    if args.concurrent and device.type != "cuda":
        parser.error("--concurrent shares one GPU between several trainings; there is no GPU here")
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
        variants = [("conv1 plain, not space-to-depth", dict(as_fit, space_to_depth=False)),
                    ("NCHW, not channels_last", dict(as_fit, channels_last=False)),
                    ("fp32, not mixed precision", dict(as_fit, amp=False)),
                    ("SGD not fused (foreach)", dict(as_fit, fused=False)),
                    ("with cuDNN autotuning", dict(as_fit, autotune=True)),
                    ("with LRN (the LRN chapter)", dict(as_fit, lrn=True)),
                    ("with LRN, LRN compiled", dict(as_fit, lrn=True, compile_lrn=True)),
                    *([] if args.no_compile else [("with torch.compile", dict(as_fit, compile=True))])]
        print(f"\n{'our training, one change':<30}{'images/s':>10}{'vs fit':>9}")
        print(f"{'as fit() runs it':<30}{t_ours:>10,.0f}{1:>8.2f}x")
        for label, options in variants:
            rate = time_training(ours, n, device, **options)
            print(f"{label:<30}{rate:>10,.0f}{rate / t_ours:>8.2f}x")
        small, large = (time_evaluation(data, device, size) for size in (256, 1024))
        print(f"\nevaluation, 224 px: batch 256 {small:,.0f} images/s, batch 1,024 {large:,.0f} ({large / small:.2f}x)")
    if args.concurrent:
        alone = time_concurrent(1, n * 4, bs)
        together = time_concurrent(args.concurrent, n * 4, bs)
        print(f"\n{args.concurrent} trainings at once, one process each: {together:,.0f} images/s together; "
              f"one alone {alone:,.0f} ({together / alone:.2f}x)")


if __name__ == "__main__":
    main()
