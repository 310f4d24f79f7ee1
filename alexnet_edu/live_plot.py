"""A loss/accuracy figure that ``fit`` redraws in place after every epoch, inside a notebook."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

__all__ = ["LivePlot", "plot_history"]


def plot_history(history, axes=None, label: str = "", style: str = "-"):
    """Draw a History's training loss (left) and train/test accuracy (right) against the epoch."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = range(1, history.epochs + 1)
    prefix = f"{label} " if label else ""
    # Fixed colours, the same for every run drawn on these axes (a second run differs by its style):
    # blue and orange stay apart for colour-blind readers, and the markers in greyscale.
    axes[0].plot(epochs, history.train_loss, style, marker="o", color="tab:blue", label=f"{prefix}train loss")
    axes[1].plot(epochs, history.train_acc, style, marker="o", color="tab:blue", label=f"{prefix}train acc")
    axes[1].plot(epochs, history.test_acc, style, marker="s", color="tab:orange", label=f"{prefix}test acc")
    axes[0].set(xlabel="epoch", ylabel="cross-entropy")
    axes[1].set(xlabel="epoch", ylabel="accuracy")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole numbers
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    return axes


class LivePlot:
    def __init__(self, epochs: int):
        from IPython.display import display

        self.epochs = epochs
        self.fig, self.axes = plt.subplots(1, 2, figsize=(9, 3.2))
        self.handle = display(self.fig, display_id=True)

    @staticmethod
    def in_notebook() -> bool:
        try:
            from IPython import get_ipython
            from ipykernel.zmqshell import ZMQInteractiveShell
        except ImportError:
            return False
        # any notebook kernel's shell: Jupyter's own, or a subclass such as Colab's
        return isinstance(get_ipython(), ZMQInteractiveShell)

    def update(self, history) -> None:
        for ax in self.axes:
            ax.clear()
        plot_history(history, self.axes)
        for ax in self.axes:
            ax.set_xlim(0.5, self.epochs + 0.5)
        self.axes[1].set_title(f"{history.profile} profile, {history.device}", fontsize="small")
        self.fig.tight_layout()
        self.handle.update(self.fig)

    def close(self) -> None:
        plt.close(self.fig)
