#!/usr/bin/env python3
"""Execute the book's chapters and save their outputs, each with a stamp saying how they were made.

    python3 tools/execute_notebooks.py [--profile full|cpu|smoke] [--budget SECONDS] [--jobs N]
                                       [--force] [--out-dir DIR] [NOTEBOOK ...]

Each chapter runs in its own ``python3`` kernel, in the notebook's folder, with ``ALEXNET_EDU_PROFILE``
set. When it finishes it is written back at once (or into ``--out-dir``) with a stamp in its metadata
(see notebook_stamp.py). A chapter is skipped when its stamp already has the profile and the current
code, and a chapter with ``full``-profile outputs is never replaced by another profile's; ``--force``
runs both anyway. With ``--budget``, chapters that would not finish in time are left for the next
call, and a chapter still running when the time is up is stopped with its file untouched. A chapter
that raises is saved as ``<name>.failed.ipynb`` in ``--failed-dir`` and the exit status is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import faulthandler
import math
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import nbformat
    from nbclient import NotebookClient
except ImportError as missing:
    sys.exit(f"{missing}: this script needs nbclient, nbformat and ipykernel (pip install nbclient ipykernel)")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook_stamp import KEY, code_hash, stamp_of, trains_a_network  # noqa: E402
from kernel_polling import poll_channels_often  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
# most important first: with a tight budget, these are the ones that get their outputs
ORDER = ["training", "lenet_vs_alexnet", "architecture", "inside", "relu", "dropout", "pooling", "depth", "lrn",
         "augmentation", "two_gpus", "before_deep_learning", "finetuning"]
PROFILES = ["full", "small-gpu", "cpu", "smoke"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Chapter:
    path: Path
    notebook: nbformat.NotebookNode
    code: str                  # code_hash of the notebook as it is now
    expected: float            # seconds the execution is expected to take
    result: str = ""           # executed, up to date, kept, no time, interrupted, failed
    seconds: float | None = None
    note: str = ""
    cell: str = ""             # while running: which code cell
    interrupted: bool = False  # stopped at the end of the budget
    client: NotebookClient | None = None   # while running: its kernel, and the cells executed so far

    @property
    def name(self) -> str:
        return self.path.stem


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, metavar="NOTEBOOK",
                        help="notebooks to execute, in this order (default: every chapter, most important first)")
    parser.add_argument("--profile", choices=PROFILES, help="default: full with CUDA, else cpu")
    parser.add_argument("--budget", type=float, help="seconds this call may take; what does not fit is left for the next")
    parser.add_argument("--default-seconds", type=float, default=90,
                        help="expected time of a chapter never executed in this profile (default 90)")
    parser.add_argument("--expect", action="append", default=[], metavar="CHAPTER=SECONDS",
                        help="expected time of one chapter, overriding its stamp (e.g. an estimate for a "
                             "chapter never run in this profile, or for --jobs N > 1); repeatable")
    parser.add_argument("--jobs", type=int, default=1, help="chapters executed at the same time (default 1)")
    parser.add_argument("--force", action="store_true",
                        help="execute even chapters that are up to date or have full-profile outputs")
    parser.add_argument("--out-dir", type=Path, help="write executed notebooks here instead of in place")
    parser.add_argument("--failed-dir", type=Path, default=ROOT / "build" / "failed",
                        help="where a chapter that raised is saved, as NAME.failed.ipynb (default build/failed/)")
    parser.add_argument("--cell-timeout", type=float, default=3600,
                        help="seconds a cell that trains (calls fit or ablate) may take (default 3600)")
    parser.add_argument("--other-cell-timeout", type=float, default=600,
                        help="seconds any other cell may take (default 600): a widget cell that blocks "
                             "nbclient (jupyter/nbclient#312) fails fast instead of holding the GPU")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    try:   # CHAPTER=SECONDS, parsed once
        args.expect = {name: float(seconds) for name, seconds in (e.split("=") for e in args.expect)}
    except ValueError:
        parser.error(f"--expect takes CHAPTER=SECONDS, e.g. --expect lrn=250; got {args.expect}")
    args.in_given_order = bool(args.notebooks)
    args.notebooks = args.notebooks or [BOOK / f"{name}.ipynb" for name in ORDER]
    return args


def default_profile() -> str:
    import torch
    return "full" if torch.cuda.is_available() else "cpu"


def machine() -> tuple[str, str]:
    """("cuda", the GPU's name), or ("cpu", the CPU's model and core count)."""
    import torch
    from alexnet_edu.train import machine_name
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return device.type, machine_name(device)


def plan(args) -> list[Chapter]:
    """Read each notebook and decide whether it is up to date, kept, or to be executed."""
    chapters = []
    for path in args.notebooks:
        notebook = nbformat.read(path, as_version=4)
        stamp, code = stamp_of(notebook), code_hash(notebook)
        same_profile = stamp.get("profile") == args.profile
        expected = float(stamp["seconds"]) if same_profile and "seconds" in stamp else args.default_seconds
        expected = args.expect.get(path.stem, expected)
        chapter = Chapter(path, notebook, code, expected)
        if not args.force and same_profile and stamp.get("code") == code:
            chapter.result, chapter.note = "up to date", f"executed {stamp.get('executed', '?')}"
        elif not args.force and stamp.get("profile") == "full" and args.profile != "full" and not args.out_dir:
            chapter.result = "kept"
            chapter.note = (f"has full-profile outputs (from {stamp.get('machine', '?')}); "
                            f"--force replaces them with {args.profile}'s")
        chapters.append(chapter)
    return chapters


def kernel_environment(profile: str) -> dict:
    """This environment with the profile set and the repository importable from the notebook's folder."""
    # PYTHONFAULTHANDLER: a kernel stopped at the end of the budget prints every thread's stack first
    env = dict(os.environ, ALEXNET_EDU_PROFILE=profile, PYTHONFAULTHANDLER="1")
    paths = [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(ROOT), *paths]))
    return env


def write_atomically(notebook, path: Path) -> None:
    """Write to a temporary file next to ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            nbformat.write(notebook, file)
        os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


async def execute(chapter: Chapter, args, env: dict, where: tuple[str, str], torch_version: str) -> None:
    notebook = nbformat.from_dict(chapter.notebook)   # a copy: the one read stays as it was
    # capture_fd_output=False: the kernel's own stderr (a stack dump, C libraries' messages) reaches ours
    def timeout_of(cell) -> float:
        return args.cell_timeout if trains_a_network(cell.source) else min(args.cell_timeout, args.other_cell_timeout)

    client = NotebookClient(notebook, kernel_name="python3", timeout=args.cell_timeout, timeout_func=timeout_of,
                            extra_arguments=["--IPKernelApp.capture_fd_output=False"],
                            shutdown_kernel="immediate", resources={"metadata": {"path": str(chapter.path.parent)}})
    code_cells = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]

    def on_cell_start(cell, cell_index):
        if cell_index in code_cells:
            chapter.cell = f"code cell {code_cells.index(cell_index) + 1} of {len(code_cells)}"

    client.on_cell_start = on_cell_start
    client.on_notebook_start = lambda notebook: poll_channels_often(client.kc)   # jupyter/nbclient#312
    chapter.client = client
    log(f"{chapter.name}: started (expected {chapter.expected:.0f} s)")
    start = time.monotonic()
    try:
        await client.async_execute(env=env)
    except Exception as error:   # a cell raised, timed out, or the kernel died
        if chapter.interrupted:
            return
        if type(error).__name__ == "CellTimeoutError":   # hung: say where, in the kernel and in this process
            print_stacks(chapter)
        chapter.result, chapter.seconds = "failed", time.monotonic() - start
        failed = args.failed_dir / f"{chapter.name}.failed.ipynb"
        write_atomically(notebook, failed)
        summary = f"{getattr(error, 'ename', type(error).__name__)}: {getattr(error, 'evalue', error)}"
        chapter.note = f"in {chapter.cell or 'kernel start'}: {summary.strip().splitlines()[0][:200]}; saved as {failed}"
        log(f"{chapter.name}: FAILED after {chapter.seconds:.1f} s {chapter.note}")
        return
    chapter.result, chapter.seconds = "executed", time.monotonic() - start
    notebook.metadata[KEY] = {
        "profile": args.profile, "device": where[0], "machine": where[1], "torch": torch_version, "code": chapter.code,
        "seconds": round(chapter.seconds, 1), "jobs": args.jobs,   # chapters sharing the machine, at most
        "executed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    out = args.out_dir / chapter.path.name if args.out_dir else chapter.path
    write_atomically(notebook, out)
    log(f"{chapter.name}: executed in {chapter.seconds:.1f} s, saved {out}")


def save_interrupted(chapter: Chapter, failed_dir: Path) -> None:
    """Before a chapter is stopped at the end of the budget: keep the cells it executed, for reading
    (not in place), and make its kernel print where each of its threads is (SIGABRT + faulthandler),
    so that a chapter that hangs says where."""
    client = chapter.client
    if client is None:
        return
    write_atomically(client.nb, failed_dir / f"{chapter.name}.interrupted.ipynb")
    print_stacks(chapter)


def print_stacks(chapter: Chapter) -> None:
    """Where a chapter stopped: every thread of its kernel (SIGABRT makes faulthandler print them),
    then this runner's threads and asyncio tasks (a kernel idle while nbclient still waits points at
    the client side, as in jupyter/nbclient#312)."""
    client = chapter.client
    process = getattr(getattr(getattr(client, "km", None), "provisioner", None), "process", None)
    if process is not None and process.poll() is None:
        log(f"{chapter.name}: stacks of its kernel's threads, where it was stopped:")
        process.send_signal(signal.SIGABRT)
        time.sleep(1)
    log(f"{chapter.name}: this runner's threads and tasks meanwhile:")
    faulthandler.dump_traceback(all_threads=True)
    for task in asyncio.all_tasks():
        task.print_stack(limit=8)
    sys.stderr.flush()


async def execute_all(chapters: list[Chapter], args, deadline: float) -> None:
    """Start chapters in order as slots free up, while each one's expected time fits before the deadline."""
    import torch
    env, where = kernel_environment(args.profile), machine()
    slots = asyncio.Semaphore(args.jobs)

    async def run(chapter):
        task = asyncio.create_task(execute(chapter, args, env, where, torch.__version__))
        left = deadline - time.monotonic()
        done, _ = await asyncio.wait({task}, timeout=None if math.isinf(left) else max(left, 0))
        if not done:
            # cancelling makes nbclient shut the kernel down; execute() then sees a 'dead kernel', not a failure
            chapter.interrupted = True
            save_interrupted(chapter, args.failed_dir)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            chapter.result = "interrupted"
            chapter.note = (f"out of time in {chapter.cell or 'kernel start'}; file untouched, what ran is in "
                            f"{args.failed_dir / (chapter.name + '.interrupted.ipynb')}")
            log(f"{chapter.name}: interrupted, the budget is spent ({chapter.note})")
        else:
            task.result()   # raises what execute() did not expect (a notebook that cannot be written)
        slots.release()

    tasks = []
    for chapter in [c for c in chapters if not c.result]:
        await slots.acquire()
        left = deadline - time.monotonic()
        if chapter.expected > left:
            slots.release()
            chapter.result, chapter.note = "no time", f"expects {chapter.expected:.0f} s, {max(left, 0):.0f} s left"
            log(f"{chapter.name}: not started, {chapter.note}")
            continue
        tasks.append(asyncio.create_task(run(chapter)))
    await asyncio.gather(*tasks)


def print_summary(chapters: list[Chapter], started: float) -> None:
    width = max(len("chapter"), *(len(c.name) for c in chapters))
    print(f"\n{'chapter':<{width}}  {'result':<11}  {'seconds':>7}  note", flush=True)
    for c in chapters:
        seconds = f"{c.seconds:.1f}" if c.seconds is not None else ""
        print(f"{c.name:<{width}}  {c.result:<11}  {seconds:>7}  {c.note}")
    counts = {}
    for c in chapters:
        counts[c.result] = counts.get(c.result, 0) + 1
    print(", ".join(f"{n} {result}" for result, n in counts.items()) + f"; {time.monotonic() - started:.0f} s in all")
    left = [c.name for c in chapters if c.result in ("no time", "interrupted")]
    if left:
        print(f"Not run for lack of time: {', '.join(left)}. Run the same command again to continue.")
    sys.stdout.flush()


def main(argv=None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    args.profile = args.profile or default_profile()
    deadline = started + args.budget if args.budget is not None else math.inf
    log(f"profile {args.profile}, {len(args.notebooks)} notebook(s), jobs {args.jobs}"
        + (f", budget {args.budget:.0f} s" if args.budget is not None else ""))
    chapters = plan(args)
    if not args.in_given_order:
        # GPU time is scarce: chapters that have no outputs in this profile yet go before chapters that
        # have them from older code (each group most important first)
        chapters.sort(key=lambda c: stamp_of(c.notebook).get("profile") == args.profile)
    for chapter in chapters:
        if chapter.result:
            log(f"{chapter.name}: {chapter.result} ({chapter.note})")
    asyncio.run(execute_all(chapters, args, deadline))
    print_summary(chapters, started)
    return 1 if any(c.result == "failed" for c in chapters) else 0


if __name__ == "__main__":
    sys.exit(main())
