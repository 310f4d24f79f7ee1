"""``summary(model, input_size)``: one row per layer with its output shape, parameters and FLOPs.

FLOPs are counted by PyTorch itself (``torch.utils.flop_counter``), which counts a multiply-add as
two FLOPs and counts only matrix multiplications and convolutions: ReLU, pooling and LRN are
comparatively free and show 0.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["summary"]


def summary(model: nn.Module, input_size: tuple[int, ...] = (1, 1, 224, 224)) -> pd.DataFrame:
    """Run one batch of zeros through ``model`` and tabulate every leaf layer.

    Returns a DataFrame with columns ``layer``, ``type``, ``output shape``, ``parameters`` and
    ``FLOPs`` (for the whole batch of ``input_size``), and a last row ``total``.
    """
    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
        for name, m in leaves
    ]
    param = next(model.parameters(), None)
    x = torch.zeros(input_size, device=param.device if param is not None else "cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()

    flops = counter.get_flop_counts()
    prefix = type(model).__name__
    rows = []
    for name, m in leaves:
        rows.append({
            "layer": name,
            "type": type(m).__name__,
            "output shape": "x".join(map(str, shapes.get(name, ())[1:])),
            "parameters": sum(p.numel() for p in m.parameters()),
            "FLOPs": sum(flops.get(f"{prefix}.{name}", {}).values()),
        })
    table = pd.DataFrame(rows)
    total = {"layer": "total", "type": "", "output shape": "",
             "parameters": int(table["parameters"].sum()), "FLOPs": int(table["FLOPs"].sum())}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)
