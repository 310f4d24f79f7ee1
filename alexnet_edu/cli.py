"""The ``alexnet-edu`` command: ``data``, ``train``, ``summary``, ``handout`` and ``assignment``.

    alexnet-edu data                                  # where Fashion-MNIST is; checks it loads
    alexnet-edu train --model alexnet --profile full --out runs/full [--resume]
    torchrun --nproc-per-node 4 -m alexnet_edu.cli train --profile full --out runs/ddp   # 4 GPUs
    alexnet-edu summary --model alexnet_paper
    alexnet-edu handout --out handouts book/*.ipynb   # the chapters without solutions, for students
    alexnet-edu assignment architecture --out assignments/architecture   # graded with otter-grader
    alexnet-edu grade --autograder ZIP --out grades submissions/   # otter run on each, one grade table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from . import distributed, models
from .checkpoint import CHECKPOINT, PREVIOUS
from .data import DataNotFoundError, CorruptDataError, load_fashion_mnist
from .profiles import PROFILES, get_profile
from .reference import CONV_WEIGHTS, git_commit, save_conv_weights
from .summary import summary
from .train import CheckpointError, CheckpointWriteError, ResumeMismatchError, default_device, fit

MODELS = ("alexnet", "alexnet_paper", "lenet")


class UsageError(Exception):
    """The command was asked for something it will not do; the message says what to do instead."""


def build_model(name: str, resolution: int) -> torch.nn.Module:
    """The named model, shaped for grey Fashion-MNIST images at ``resolution`` px."""
    if name == "alexnet":
        return models.alexnet(image_size=resolution)
    if name == "alexnet_paper":
        return models.alexnet_paper(num_classes=10, in_channels=1)
    return models.lenet()


def model_resolution(name: str, resolution: int) -> int:
    """LeNet reads 28 px and the paper's AlexNet 227 px; the d2l AlexNet takes the profile's size."""
    return {"lenet": 28, "alexnet_paper": 227}.get(name, resolution)


def cmd_data(args) -> None:
    data = load_fashion_mnist(args.root)
    print(f"Fashion-MNIST found in {data.source}")
    print(f"  train: {tuple(data.train_images.shape)} images, labels {torch.bincount(data.train_labels).tolist()}")
    print(f"  test:  {tuple(data.test_images.shape)} images, labels {torch.bincount(data.test_labels).tolist()}")


def cmd_train(args) -> None:
    """Train in this process, or, under torchrun, in one of its processes (distributed.py)."""
    if not distributed.under_torchrun():
        return train(args, default_device())
    try:
        device = distributed.start()
        rank, world = distributed.rank_and_world()
        if rank == 0:
            print(f"{world} process{'es' if world > 1 else ''} ({torch.distributed.get_backend()}), "
                  f"this machine's on {'GPUs' if device.type == 'cuda' else 'the CPU'}")
        train(args, device)
    finally:
        distributed.finish()


def train(args, device: torch.device) -> None:
    profile = get_profile(args.profile)
    out = Path(args.out)
    if not args.resume and holds_checkpoint(out):
        raise UsageError(f"{out} already holds a run's checkpoint ({epochs_done(out)}): add --resume to "
                         f"continue it, or give another --out to start a new run (nothing was changed)")
    if device.type == "cpu" and profile.name in ("full", "small-gpu") and distributed.rank_and_world()[0] == 0:
        print(f"alexnet-edu: the {profile.name} profile is sized for a GPU; on this CPU it takes hours (a "
              f"projection follows after the first steps). --profile cpu trains in minutes.", file=sys.stderr)
    resolution = model_resolution(args.model, profile.resolution)
    with distributed.local_rank_0_first():   # one process per machine puts the data in the cache
        data = load_fashion_mnist(args.root, device)
    data = data.subset(profile.train_size, profile.test_size, seed=args.seed)
    torch.manual_seed(args.seed)
    model = build_model(args.model, resolution)
    start = time.time()
    history = fit(model, data, profile=profile, resolution=resolution, epochs=args.epochs, lr=args.lr,
                  out=args.out, resume=args.resume, seed=args.seed, device=device, compile=args.compile,
                  augment=args.augment, live_plot=False)
    if distributed.rank_and_world()[0] != 0:
        return   # process 0 writes and prints
    history.settings.update(commit=git_commit(), wall_seconds_this_call=round(time.time() - start, 1))
    history.save(Path(args.out) / "history.json")
    if args.save_convs:
        save_conv_weights(model, Path(args.out) / CONV_WEIGHTS)
    print(history)
    print(f"history and checkpoint in {args.out}")


def holds_checkpoint(out: Path) -> bool:
    """Whether ``out`` holds a checkpoint that --resume would continue from (the newest or the one before)."""
    return (out / CHECKPOINT).exists() or (out / PREVIOUS).exists()


def epochs_done(out: Path) -> str:
    """How far the run in ``out`` got, from its history.json, in words."""
    try:
        return f"after epoch {len(json.loads((out / 'history.json').read_text())['train_loss'])}"
    except (OSError, ValueError, KeyError):
        return "no history.json beside it"


def say_interrupted(args) -> None:
    """After Ctrl-C: what was kept, and how to go on."""
    if getattr(args, "command", None) != "train":
        print("alexnet-edu: interrupted", file=sys.stderr)
    elif holds_checkpoint(Path(args.out)):
        print(f"alexnet-edu: interrupted; the last checkpoint ({epochs_done(Path(args.out))}) is in {args.out}: "
              f"run the same command with --resume to continue from it", file=sys.stderr)
    else:
        print(f"alexnet-edu: interrupted before the first checkpoint (one is written after every epoch): "
              f"nothing to resume in {args.out}", file=sys.stderr)


def cmd_summary(args) -> None:
    if args.model == "alexnet_paper":  # as published: colour 227 px input, 1000 ImageNet classes
        size = args.size or 227
        model, shape = models.alexnet_paper(), (1, 3, size, size)
    else:
        size = args.size or model_resolution(args.model, 224)
        model, shape = build_model(args.model, size), (1, 1, size, size)
    print(f"{args.model}, input {'x'.join(map(str, shape[1:]))}; FLOPs for one image (a multiply-add counts 2)")
    with pd.option_context("display.max_rows", None, "display.width", 120):
        print(summary(model, shape).to_string(index=False))


def cmd_handout(args) -> None:
    import nbformat   # only this command needs it (the GPU machines that train may lack it)

    from .handout import count_solutions, without_solutions

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in map(Path, args.notebooks):
        if path.resolve().parent == out.resolve():
            raise SystemExit(f"alexnet-edu: {path} is in --out {out}; choose another folder")
        nb = nbformat.read(path, as_version=4)
        nbformat.write(without_solutions(nb), out / path.name)
        print(f"{path}: {count_solutions(nb)} solution(s) taken out, outputs cleared -> {out / path.name}")


def need_otter(command: str) -> None:
    """Stop with what to install, before anything is written, when otter-grader is missing."""
    import importlib.util

    if importlib.util.find_spec("otter") is None:
        raise SystemExit(f"alexnet-edu {command} needs otter-grader: pip install 'alexnet-edu[grade]'")


def cmd_assignment(args) -> None:
    need_otter("assignment")
    from .assignment import load_grading, write_assignment

    chapter = Path(args.chapter)
    if chapter.suffix != ".ipynb":
        chapter = Path(args.book) / f"{args.chapter}.ipynb"
    labels = args.exercises.split(",") if args.exercises else None
    if not chapter.exists():
        raise SystemExit(f"alexnet-edu: no chapter {chapter}")
    try:
        grading = load_grading(chapter.stem).select(labels)
        paths = write_assignment(chapter, Path(args.out), labels)
    except ValueError as exc:
        raise SystemExit(f"alexnet-edu: {exc}")
    auto = sum(e.points for e in grading.exercises.values())
    print(f"{chapter.stem}: {len(grading.exercises)} exercise(s), {auto:g} point(s) autograded, "
          f"{grading.total - auto:g} graded by hand")
    for which, path in paths.items():
        print(f"  {which:10} {path}")


def cmd_grade(args) -> None:
    need_otter("grade")
    from .assignment import grade_folder

    submissions = [p for path in map(Path, args.submissions)
                   for p in (sorted(path.glob("*.ipynb")) if path.is_dir() else [path])]
    table = grade_folder(Path(args.autograder), submissions, Path(args.out), jobs=args.jobs)
    print(table.to_string(index=False))
    print(f"grades in {Path(args.out) / 'final_grades.csv'}")


def positive(text: str) -> int:
    """An argparse type: a whole number, 1 or more."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, 1 or more")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alexnet-edu", description="AlexNet on Fashion-MNIST, from the alexnet-edu book")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="find Fashion-MNIST and check that it loads")
    p.add_argument("--root", help="a folder with the four IDX files (default: search, see alexnet_edu.data)")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train", help="train a model with a profile's recipe")
    p.add_argument("--model", choices=MODELS, default="alexnet")
    p.add_argument("--profile", choices=tuple(PROFILES), help="default: ALEXNET_EDU_PROFILE, else full on an A100/H100-class GPU, "
                   "small-gpu on other GPUs, cpu without")
    p.add_argument("--out", required=True, help="folder for checkpoint.pt and history.json")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out (same --model, --profile and recipe; --epochs may grow)")
    p.add_argument("--epochs", type=int, help="override the profile's epoch count")
    p.add_argument("--lr", type=float, help="override the profile's learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", action="store_true", help="random crops and flips, as in the paper")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (worth it on a GPU)")
    p.add_argument("--save-convs", action="store_true", help=f"also save the convolutions in fp16 ({CONV_WEIGHTS})")
    p.add_argument("--root", help="where Fashion-MNIST is (default: search)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("summary", help="per-layer output shapes, parameters and FLOPs")
    p.add_argument("--model", choices=MODELS, default="alexnet")
    p.add_argument("--size", type=int, help="input side in px (default: the model's own)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("handout", help="copies of chapters without solutions or outputs, for students")
    p.add_argument("notebooks", nargs="+", help="the chapters, e.g. book/*.ipynb")
    p.add_argument("--out", required=True, help="folder for the copies (not the chapters' own folder)")
    p.set_defaults(func=cmd_handout)

    p = sub.add_parser("assignment", help="a graded assignment (otter-grader): student notebook, autograder zip, solutions")
    p.add_argument("chapter", help="a chapter's name (architecture) or notebook (book/architecture.ipynb)")
    p.add_argument("--exercises", help="comma-separated exercise labels (default: all the chapter's)")
    p.add_argument("--out", required=True, help="folder for student/, autograder/ and solutions/ (replaced)")
    p.add_argument("--book", default="book", help="where the chapters are when CHAPTER is a name (default: book)")
    p.set_defaults(func=cmd_assignment)

    p = sub.add_parser("grade", help="grade submitted notebooks with an autograder zip, without Docker (otter run)")
    p.add_argument("submissions", nargs="+", help="notebooks, or folders of them")
    p.add_argument("--autograder", required=True, help="the zip `alexnet-edu assignment` wrote")
    p.add_argument("--out", required=True, help="folder for final_grades.csv")
    p.add_argument("--jobs", type=positive, default=1,
                   help="submissions graded at once, each with its share of the CPU cores (default 1)")
    p.set_defaults(func=cmd_grade)

    args = parser.parse_args(argv)
    once_per_machine = os.environ.get("LOCAL_RANK", "0") == "0"   # under torchrun, every process runs this
    try:
        args.func(args)
    except (DataNotFoundError, CorruptDataError, ResumeMismatchError, CheckpointError, CheckpointWriteError,
            distributed.LaunchError, UsageError) as exc:
        if once_per_machine:
            print(f"alexnet-edu: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if once_per_machine:
            say_interrupted(args)
        return 130   # the shell's status for Ctrl-C
    return 0


if __name__ == "__main__":
    sys.exit(main())
