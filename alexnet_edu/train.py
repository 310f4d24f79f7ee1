"""Training: one plain ``fit`` loop, read top to bottom, plus the ``History`` it returns.

The optimiser is the paper's: SGD with momentum 0.9 and weight decay 5e-4. Each epoch ends with a
test-set evaluation, an entry in the history and, when ``out`` is given, a checkpoint, so that an
interrupted run resumed with ``resume=True`` loses at most the epoch it was in. Resuming first checks
that the checkpoint was made with the same model, profile and recipe (``checkpoint.py``).
On CUDA the data already sits on the GPU and the model runs channels_last in mixed precision:
bf16 on GPUs that compute in it natively (compute capability 8 and later), fp16 with a gradient
scaler on older ones such as Colab's T4; SGD is fused there (a few kernels update every weight,
not a few per tensor). ``compile=True`` adds ``torch.compile``. On a CPU everything stays fp32:
bf16 is far slower there. Under ``torchrun`` each process trains on its share of every batch and
DDP averages the gradients (``distributed.py``); without it, ``fit`` runs in this one process.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from .augment import CROP_FRACTION, ten_crops
from .checkpoint import (CHECKPOINT, CheckpointError, CheckpointWriteError, ResumeMismatchError, WHAT_TO_DO,
                         check_resume, checkpoint_state, read_checkpoint, save_checkpoint)
from .data import FashionMNIST, batches, validation_split
from .live_plot import LivePlot
from .profiles import Profile, get_profile, machine_name

PAPER_MOMENTUM, PAPER_WEIGHT_DECAY = 0.9, 5e-4      # section 5 of the paper: fit's defaults

__all__ = ["CheckpointError", "CheckpointWriteError", "History", "ResumeMismatchError", "amp_dtype", "autocast_for",
           "default_device", "evaluate", "fit", "grad_scaler_for", "input_layout", "machine_name", "precision_name", "sgd"]


def default_device() -> torch.device:
    """The first GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class History:
    """What happened in each epoch, and where. Saves to and loads from JSON."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)          # empty without a validation split
    images_per_s: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    batch_train_acc: list[float] = field(default_factory=list)   # one entry per training step
    device: str = ""
    profile: str = ""
    settings: dict = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def save(self, path: str | os.PathLike) -> None:
        tmp = Path(f"{path}.tmp")   # then a rename: a crash mid-write keeps the old file whole
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "History":
        return cls(**json.loads(Path(path).read_text()))

    def __str__(self) -> str:
        if not self.epochs:
            return "History: no epoch finished yet"
        return (f"{self.epochs} epoch(s) on {self.device} ({self.profile} profile): loss {self.train_loss[-1]:.3f}, "
                f"train acc {self.train_acc[-1]:.3f}, test acc {self.test_acc[-1]:.3f}, "
                f"{sum(self.images_per_s) / self.epochs:,.0f} images/s, {sum(self.seconds):.0f} s in all")


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision the model computes in on ``device``: bf16 on GPUs with native bf16
    (compute capability 8, Ampere, and later); fp16 on older GPUs such as the T4, which only emulate
    bf16 but have fp16 tensor cores; None (fp32) on the CPU, where bf16 is ~20x slower than fp32."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16


def precision_name(device: torch.device) -> str:
    """What the model computes in on ``device``, for printing: 'bfloat16', 'float16' or 'float32'."""
    return str(amp_dtype(device) or torch.float32).removeprefix("torch.")


def autocast_for(device: torch.device):
    """Autocast to ``amp_dtype(device)``; a no-op where that is None (the CPU)."""
    dtype = amp_dtype(device)
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def grad_scaler_for(device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for fp16, whose small gradients underflow without it; disabled (a no-op) for
    bf16 and fp32, which need none."""
    return torch.amp.GradScaler(device.type, enabled=amp_dtype(device) == torch.float16)


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, resolution: int,
             batch_size: int | None = None, ten_crop: bool = False) -> float:
    """Accuracy of ``model`` on ``images`` (uint8, N x 1 x 28 x 28), resized to ``resolution``.

    ``batch_size`` defaults to 1,024 on a GPU (no gradients to keep, so big batches fit and keep it
    busy) and 256 on the CPU.

    ``ten_crop=True`` averages the softmax over the paper's ten test crops (four corners, centre,
    and their mirror images) instead of looking at the whole image once.
    """
    device = next(model.parameters()).device
    batch_size = batch_size or (1024 if device.type == "cuda" else 256)
    was_training = model.training
    model.eval()
    correct = 0
    side = round(resolution / CROP_FRACTION) if ten_crop else resolution
    for x, y in batches(images.to(device), labels.to(device), batch_size, side):
        views = ten_crops(x, resolution) if ten_crop else [x]
        with autocast_for(device):
            probs = sum(model(input_layout(v, device)).float().softmax(1) for v in views)
        correct += (probs.argmax(1) == y).sum()    # stays on the device: one GPU sync, at the end
    model.train(was_training)
    return int(correct) / len(labels)


def input_layout(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """channels_last on CUDA (what its convolution kernels prefer); unchanged on the CPU."""
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


def sgd(model: nn.Module, *, lr: float, momentum: float, weight_decay: float, fused: bool) -> torch.optim.SGD:
    """The paper's optimiser, with its momentum buffers set to zero before the first step.

    With zeros the first step is the same (the buffer becomes the gradient), but nothing is left to
    chance: fused SGD otherwise allocates the buffers with ``torch.empty_like`` at its first step and
    marks them filled, even when the gradient scaler skips that step (an fp16 overflow, common with
    the scaler's first scale of 65,536), so the next step would add whatever that memory held.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                                fused=fused)
    if momentum:
        for p in model.parameters():
            optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return optimizer


def fit(model: nn.Module, data: FashionMNIST, *, profile: Profile | str | None = None,
        epochs: int | None = None, lr: float | None = None, batch_size: int | None = None,
        resolution: int | None = None, momentum: float = PAPER_MOMENTUM,
        weight_decay: float = PAPER_WEIGHT_DECAY,
        augment: bool = False, validation_size: int | None = None, lr_drop_patience: int | None = None, out: str | os.PathLike | None = None,
        resume: bool = False, seed: int = 0, device: torch.device | str | None = None,
        compile: bool = False, live_plot: bool | None = None, progress: bool = True,
        describe: bool = True) -> History:
    """Train ``model`` on ``data.train_*`` and test it on ``data.test_*`` after every epoch.

    Unset ``epochs``, ``lr``, ``batch_size`` and ``resolution`` come from the profile (by default
    the one ``get_profile()`` picks). ``validation_size=n`` holds n class-balanced training images out
    of training and measures accuracy on them after every epoch (``History.val_acc``).
    ``lr_drop_patience=k`` divides the learning rate by 10 when that validation accuracy has not
    improved for k + 1 epochs in a row (``ReduceLROnPlateau``'s patience: k epochs without improvement
    are tolerated); it needs ``validation_size``, since a schedule that read the test set would leak
    it into training, as the paper's did not (it watched a validation error). ``out``: a folder for ``checkpoint.pt`` and
    ``history.json``, written after every epoch; ``resume=True`` continues from that checkpoint (or
    from ``checkpoint.prev.pt`` when it cannot be read), and raises ResumeMismatchError, loading
    nothing, when it was made with another model, profile or recipe. ``epochs`` may grow on resume.
    ``live_plot`` (default: only inside a notebook) draws loss and accuracy, updated in place.
    ``progress=False`` hides the progress bar and the per-epoch lines; ``describe=False`` skips the
    opening line that names the profile and the recipe (for a caller that has printed it already).
    Under torchrun (a process group is initialised) ``batch_size`` is the global batch: each of the
    N processes trains on 1/N of it and evaluates 1/N of the test images; only process 0 prints and
    writes ``out``; ``resume=True`` loads the checkpoint in every process.
    """
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    epochs = profile.epochs if epochs is None else epochs
    lr = profile.lr if lr is None else lr
    batch_size = profile.batch_size if batch_size is None else batch_size
    resolution = profile.resolution if resolution is None else resolution
    device = torch.device(device) if device is not None else default_device()
    rank, world = distributed.rank_and_world()
    distributed.check_batch(batch_size, world)
    say = print if rank == 0 else (lambda *args, **kwargs: None)
    progress, describe = progress and rank == 0, describe and rank == 0
    if lr_drop_patience is not None and not validation_size:
        raise ValueError("lr_drop_patience watches validation accuracy: also pass validation_size "
                         "(e.g. 5000), the number of training images to hold out for it")
    train_images, train_labels = data.train_images, data.train_labels
    if validation_size:
        kept, held = validation_split(train_labels, validation_size)
        val_images, val_labels = train_images[held], train_labels[held]
        train_images, train_labels = train_images[kept], train_labels[kept]
    if describe:
        print(replace(profile, epochs=epochs, lr=lr, batch_size=batch_size, resolution=resolution,
                      train_size=len(train_labels), test_size=len(data.test_labels)).describe()
              + (f" {validation_size:,} training images held out for validation." if validation_size else "")
              + "".join(f" Here {name} {value:g}, not the paper's {paper:g}." for name, value, paper in
                        (("momentum", momentum, PAPER_MOMENTUM), ("weight decay", weight_decay, PAPER_WEIGHT_DECAY))
                        if value != paper))

    model.to(device, memory_format=torch.channels_last if device.type == "cuda" else torch.contiguous_format)
    train_images, train_labels = train_images.to(device), train_labels.to(device)
    optimizer = sgd(model, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=device.type == "cuda")
    scaler = grad_scaler_for(device)
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=lr_drop_patience)
               if lr_drop_patience is not None else None)
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    settings = dict(epochs=epochs, lr=lr, batch_size=batch_size, resolution=resolution, momentum=momentum,
                    weight_decay=weight_decay, augment=augment, seed=seed, train_size=len(train_labels),
                    test_size=len(data.test_labels), validation_size=validation_size,
                    lr_drop_patience=lr_drop_patience, model=type(model).__name__,
                    parameters=sum(p.numel() for p in model.parameters()), machine=machine_name(device),
                    precision=precision_name(device))
    if world > 1:
        settings["processes"] = world
    history = History(device=str(device), profile=profile.name, settings=settings)

    folder = Path(out) if out is not None else None
    found = read_checkpoint(folder, device) if resume and folder is not None else None
    if resume and folder is not None and found is None:
        say(f"no checkpoint in {folder} yet: starting from epoch 1")
    if found is not None:
        state, path = found
        # before anything is loaded: the same model, profile and recipe, or a clear refusal
        check_resume(state, path, profile=profile.name, epochs=epochs, settings=settings)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:   # same class and size, other shapes
            raise ResumeMismatchError(f"cannot resume from {path}: its weights do not fit this model "
                                      f"({str(exc).splitlines()[0]}).\n{WHAT_TO_DO}") from None
        optimizer.load_state_dict(state["optimizer"])
        if plateau is not None and state["plateau"] is not None:
            plateau.load_state_dict(state["plateau"])
        if state.get("scaler"):   # empty when saved without fp16
            scaler.load_state_dict(state["scaler"])
        history = History(**state["history"])
        history.settings["epochs"] = epochs   # the run may go on longer than first planned
        was = state["history"]["settings"]
        if (was.get("machine"), was.get("precision")) != (settings["machine"], settings["precision"]):
            say(f"note: {path} was written on {was.get('machine')} in {was.get('precision')}; "
                f"continuing on {settings['machine']} in {settings['precision']}")
        # RNG states are CPU byte tensors, which map_location moved to the device
        torch.set_rng_state(state["torch_rng"].cpu())
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)   # dropout's masks on the GPU
        shuffle.set_state(state["shuffle_rng"].cpu())
        if path.name != CHECKPOINT and rank == 0:   # checkpoint.pt is unreadable or missing: drop it, so
            (folder / CHECKPOINT).unlink(missing_ok=True)   # that the next write keeps this one as checkpoint.prev.pt
        say(f"resumed from {path} after epoch {history.epochs}")
    if resume and world > 1:
        distributed.check_resumed_alike(history.epochs)

    step = distributed.wrap(model, device) if world > 1 else model   # DDP: gradients averaged
    step = torch.compile(step) if compile else step
    # Checkpoints are written by a background thread while the next epoch trains; the weights are
    # copied to the CPU first, so training cannot change them under the writer. One write at a time.
    writer = ThreadPoolExecutor(max_workers=1) if folder is not None and rank == 0 else None
    writing: Future | None = None
    waited, written = 0.0, 0.0   # seconds the loop spent on checkpoints; seconds the writes took
    show_plot = live_plot if live_plot is not None else LivePlot.in_notebook()
    plot = LivePlot(epochs) if show_plot and rank == 0 else None

    first_epoch = history.epochs
    warm_up = None   # (clock, images seen) after the first steps, for the projected time
    for epoch in range(first_epoch, epochs):
        model.train()
        start = time.perf_counter()
        if world > 1:   # each process its own dropout masks, and the same ones again after a resume
            torch.manual_seed(seed + world * epoch + rank)
        # Per-step loss and hits stay on the device; reading them (a GPU sync) happens only
        # every 50 steps for the progress bar and once at the end of the epoch.
        losses, hits, sizes = [], [], []
        bar = tqdm(total=len(train_labels), unit="img", desc=f"epoch {epoch + 1}/{epochs}",
                   disable=not progress, leave=True)
        for x, y in batches(train_images, train_labels, batch_size, resolution,
                            shuffle=True, augment=augment, generator=shuffle):
            n = len(y)   # every process shuffled and augmented the same n images with the same generator
            if world > 1:   # and trains on its share of them
                x, y = x.tensor_split(world)[rank], y.tensor_split(world)[rank]
            with autocast_for(device):
                logits = step(input_layout(x, device))
                # under torchrun, this share's sum scaled so that DDP's average over the processes is
                # the mean over all n images, also when the last batch does not split evenly
                loss = (F.cross_entropy(logits, y) if world == 1
                        else F.cross_entropy(logits, y, reduction="sum") * (world / n))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.detach() * n / world)   # this process's sum of losses
            hits.append((logits.argmax(1) == y).sum())
            sizes.append(n)
            bar.update(n)
            if progress and epoch == first_epoch and len(sizes) in (WARM_UP_STEPS, WARM_UP_STEPS + 20):
                warm_up = _say_projected_time(warm_up, sum(sizes), (epochs - epoch) * len(train_labels), device)
            if len(losses) % 50 == 0:
                bar.set_postfix(loss=f"{torch.stack(losses).sum().item() * world / sum(sizes):.3f}",
                                refresh=False)   # process 0's share
        hits, losses = torch.stack(hits), torch.stack(losses)
        if world > 1:
            distributed.add_up(hits, losses)   # all the processes' counts
        hits, seen = hits.tolist(), sum(sizes)
        loss_sum, correct = losses.sum().item(), sum(hits)
        history.batch_train_acc.extend(h / n for h, n in zip(hits, sizes))
        train_seconds = time.perf_counter() - start
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
        bar.close()

        test_acc = _accuracy(model, data.test_images, data.test_labels, resolution, rank, world)
        history.train_loss.append(loss_sum / seen)
        history.train_acc.append(correct / seen)
        history.test_acc.append(test_acc)
        if validation_size:
            history.val_acc.append(_accuracy(model, val_images, val_labels, resolution, rank, world))
        history.images_per_s.append(seen / train_seconds)
        history.seconds.append(time.perf_counter() - start)
        history.lr.append(optimizer.param_groups[0]["lr"])
        if plateau is not None:
            plateau.step(history.val_acc[-1])
        if plot is not None:
            plot.update(history)
        elif progress:
            print(f"epoch {epoch + 1}: loss {history.train_loss[-1]:.3f}, train acc {history.train_acc[-1]:.3f}, "
                  + (f"validation acc {history.val_acc[-1]:.3f}, " if validation_size else "")
                  + f"test acc {test_acc:.3f}, {history.images_per_s[-1]:,.0f} images/s")
        if writer is not None:   # process 0
            began = time.perf_counter()
            if writing is not None:
                written += writing.result()   # the previous checkpoint is on disk (or its error raised here)
            state = checkpoint_state(model, optimizer, plateau, scaler, asdict(history), shuffle, device)
            writing = writer.submit(_write_checkpoint, folder, state)
            waited += time.perf_counter() - began
    if writer is not None:
        began = time.perf_counter()
        writer.shutdown(wait=True)  # the last checkpoint is on disk before fit returns
        if writing is not None:
            written += writing.result()
        history.settings.update(checkpoint_write_seconds=round(written, 2),
                                checkpoint_wait_seconds=round(waited + time.perf_counter() - began, 2))
        history.save(folder / "history.json")   # with those two figures
    if plot is not None:
        plot.close()
    return history


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, resolution: int,
              rank: int, world: int) -> float:
    """``evaluate``; under torchrun each process counts the hits in its share of the images and
    the counts are added up: the same accuracy as one process's, in 1/world of the time."""
    if world == 1:
        return evaluate(model, images, labels, resolution=resolution)
    part = torch.arange(len(labels)).tensor_split(world)[rank]
    accuracy = evaluate(model, images[part], labels[part], resolution=resolution) if len(part) else 0.0
    hits = torch.tensor(round(accuracy * len(part)), device=next(model.parameters()).device)
    distributed.add_up(hits)
    return hits.item() / len(labels)


WARM_UP_STEPS = 10   # the first steps of a run are slow (memory, kernels chosen): not timed


def _say_projected_time(warm_up: tuple[float, int] | None, seen: int, to_train: int,
                        device: torch.device) -> tuple[float, int]:
    """Called after the warm-up steps (``warm_up`` None), then 20 steps later with what the first call
    returned: how long the rest of a long run will take at the speed of those 20 steps."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)     # the steps so far have really run
    now = time.perf_counter()
    if warm_up is not None:
        began, seen_then = warm_up
        to_go = to_train - seen
        seconds = to_go / ((seen - seen_then) / (now - began))
        if seconds > 60:
            took = f"{seconds / 60:.0f} min" if seconds < 2 * 3600 else f"{seconds / 3600:.1f} h"
            tqdm.write(f"projected: about {took} for the {to_go:,} training images still "
                       f"to go, at the speed of steps {WARM_UP_STEPS + 1} to {WARM_UP_STEPS + 20} "
                       f"(evaluation not included)")
    return now, seen


def _write_checkpoint(folder: Path, state: dict) -> float:
    """Write checkpoint.pt (keeping the one before as checkpoint.prev.pt) and history.json beside it.
    Returns the seconds it took."""
    start = time.perf_counter()
    save_checkpoint(folder, state)
    History(**state["history"]).save(folder / "history.json")
    return time.perf_counter() - start
