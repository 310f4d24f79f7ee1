"""Ablations: train the same recipe with and without one idea, over several seeds, and compare.

The chapters on ReLU, dropout, LRN, pooling and augmentation each call :func:`ablate` with a few
model builders; it returns one row per (variant, seed) and keeps every run's History, so that a
chapter can both tabulate the effect (mean and spread over seeds) and plot the curves.
"""

from __future__ import annotations

from typing import Callable

import pandas as pd
import torch
from torch import nn

from .data import FashionMNIST
from .profiles import Profile
from .train import History, fit

__all__ = ["ablate", "mean_and_spread"]

RECIPE = {"epochs", "lr", "batch_size", "resolution"}   # the fit() arguments its printed recipe names


def ablate(variants: dict[str, Callable[[], nn.Module]], data: FashionMNIST, profile: Profile, *,
           seeds: tuple[int, ...] = (0, 1, 2), fit_options: dict[str, dict] | None = None,
           **common) -> tuple[pd.DataFrame, dict[tuple[str, int], History], dict[tuple[str, int], nn.Module]]:
    """Train every variant once per seed with the same data and recipe.

    ``variants`` maps a name to a function that builds a fresh model; ``fit_options`` may give a
    variant its own extra ``fit`` arguments; ``common`` goes to every ``fit`` call.
    Returns a table (variant, seed, final train loss / train acc / test acc, seconds), and the
    histories and trained models keyed by ``(variant, seed)``.
    """
    rows, histories, models = [], {}, {}
    for name, build in variants.items():
        for seed in seeds:
            torch.manual_seed(seed)
            model = build()
            own = (fit_options or {}).get(name, {})
            # The recipe is printed before the first run, and again only for a variant that changes it.
            describe = not rows or (seed == seeds[0] and bool(RECIPE & set(own)))
            history = fit(model, data, profile=profile, seed=seed, live_plot=False, progress=False,
                          describe=describe, **{**common, **own})
            histories[name, seed], models[name, seed] = history, model
            rows.append({"variant": name, "seed": seed, "train loss": history.train_loss[-1],
                         "train acc": history.train_acc[-1], "test acc": history.test_acc[-1],
                         "seconds": sum(history.seconds)})
            print(f"{name}, seed {seed}: train acc {rows[-1]['train acc']:.3f}, "
                  f"test acc {rows[-1]['test acc']:.3f} ({rows[-1]['seconds']:.0f} s)")
    return pd.DataFrame(rows), histories, models


def mean_and_spread(table: pd.DataFrame, columns=("train acc", "test acc")) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each column, one row per variant."""
    summary = table.groupby("variant", sort=False)[list(columns)].agg(["mean", "std"])
    return summary.round(4)
