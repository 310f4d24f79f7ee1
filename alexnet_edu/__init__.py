"""alexnet_edu: the code behind the alexnet-edu book (AlexNet on Fashion-MNIST at 224 px).

One module per job: ``data`` (find, load and batch Fashion-MNIST), ``augment`` (the paper's crops,
flips and PCA colour noise), ``models`` (AlexNet, the paper's AlexNet, LeNet, LRN), ``summary``
(per-layer shapes, parameters, FLOPs), ``profiles`` (how much to train on this machine), ``train``
(``fit`` and ``History``), ``live_plot``, ``cli`` (the ``alexnet-edu`` command).
"""

from .data import CLASSES, balanced_subset, batches, load_fashion_mnist
from .models import LocalResponseNorm, alexnet, alexnet_paper, lenet
from .profiles import PROFILES, get_profile
from .summary import summary
from .train import History, default_device, evaluate, fit

__version__ = "0.1.0"
__all__ = [
    "CLASSES", "PROFILES", "History", "LocalResponseNorm", "alexnet", "alexnet_paper", "balanced_subset",
    "batches", "default_device", "evaluate", "fit", "get_profile", "lenet", "load_fashion_mnist", "summary",
]
