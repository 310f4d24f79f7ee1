"""A second device on a CPU-only machine, for tests: catches the device mix-ups that crash on a GPU.

On a CPU, a model left on the CPU and data moved to ``default_device()`` are on the same device, so a
chapter that forgets a ``.to(device)`` runs here and crashes on a GPU ("Input type
(torch.cuda.FloatTensor) and weight type (torch.FloatTensor) should be the same"). Under
:func:`emulate`, ``default_device()`` returns ``DEVICE``, and every tensor moved or created there is
an :class:`OnDevice`: a CPU tensor that stands for one on the GPU. A ``TorchFunctionMode`` follows
them through every operation and raises as CUDA would when an operation mixes them with ordinary CPU
tensors (0-d tensors excepted, as CUDA allows), when one is turned into a NumPy array, and so on.

The arithmetic is the CPU's, so results are the same as without the emulation. The tests' notebook
kernels start it from an IPython startup file (``tests/conftest.py``).
"""

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

DEVICE = torch.device("cpu", 0)   # "the GPU": torch accepts an index for the CPU, and it stays distinct
NAME = "cuda:0 (emulated by tests/second_device.py)"


class OnDevice(torch.Tensor):
    """A CPU tensor standing for one on the emulated GPU; the mode below does all the work."""

    __torch_function__ = torch._C._disabled_torch_function_impl


def on_device(t) -> bool:
    return isinstance(t, OnDevice)


def _wrap(t):
    """``t`` as an OnDevice tensor, sharing its data (and its autograd history)."""
    if not isinstance(t, torch.Tensor) or isinstance(t, OnDevice):
        return t
    wrapped = t.as_subclass(OnDevice)
    if getattr(t, "_is_param", False) or isinstance(t, torch.nn.Parameter):
        wrapped._is_param = True   # still a Parameter to isinstance(), as torch does for subclasses
    return wrapped


def _plain(t):
    return t.as_subclass(torch.Tensor) if isinstance(t, OnDevice) else t


def _targets_device(device) -> bool:
    return device is not None and torch.device(device) == DEVICE


def _mix_error(func, tensors) -> RuntimeError:
    where = sorted({f"{NAME}" if on_device(t) else "cpu" for t in tensors})
    return RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                        f"{' and '.join(where)}! (in {getattr(func, '__name__', func)}; on a real GPU this "
                        f"crashes too: move the model or the tensor with .to(device))")


DEVICE_GETTER, GRAD_GETTER = torch.Tensor.device.__get__, torch.Tensor.grad.__get__   # compared with ==

# Calls that may take tensors from both devices, as on CUDA: copies between devices, indexing a GPU
# tensor with CPU indices, and what only reads a tensor's metadata.
CROSSING = {torch.Tensor.copy_, torch.Tensor.__getitem__, torch.Tensor.__setitem__, torch.Tensor.to,
            torch.Tensor.cpu, torch.Tensor.__repr__, torch.Tensor.__format__,
            torch._has_compatible_shallow_copy_type}


class SecondDevice(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        any_on = any(on_device(t) for t in tensors)

        if func == DEVICE_GETTER and any_on:
            return DEVICE
        if func in (torch.Tensor.numpy, torch.Tensor.__array__) and any_on:
            raise TypeError(f"can't convert {NAME} device type tensor to numpy. Use Tensor.cpu() to copy "
                            f"the tensor to host memory first.")
        if func is torch.Tensor.__reduce_ex__ and any_on:   # torch.save: written as a CPU tensor
            return func(_plain(args[0]), *args[1:], **kwargs)
        if func is torch.Tensor.__deepcopy__ and any_on:   # copy.deepcopy(model): the copy stays there
            source = args[0].detach().as_subclass(torch.Tensor)
            copied = _wrap(func(source, *args[1:], **kwargs)).requires_grad_(args[0].requires_grad)
            copied._is_param = getattr(args[0], "_is_param", False)
            return copied
        if func in (torch.Tensor.__repr__, torch.Tensor.__format__) and any_on:   # tensor(...), f"{t:.3f}"
            return func(_plain(args[0]), *args[1:], **kwargs)
        if func is torch.Tensor.cpu:
            return _plain(func(*args, **kwargs)).clone() if any_on else func(*args, **kwargs)
        if func is torch.Tensor.to:
            like = args[1] if len(args) > 1 and isinstance(args[1], torch.Tensor) else None   # .to(other)
            device = DEVICE if like is not None and on_device(like) else torch._C._nn._parse_to(
                *(_plain(a) for a in args[1:]), **{k: v for k, v in kwargs.items() if k != "copy"})[0]
            if _targets_device(device):   # to the emulated GPU: a copy, as a real move makes one
                cpu = [("cpu" if isinstance(a, (torch.device, str, torch.Tensor)) else a) for a in args[1:]]
                if like is not None:   # .to(other) also takes other's dtype
                    kwargs = {**kwargs, "dtype": like.dtype}
                moved = func(_plain(args[0]), *cpu, **{**kwargs, **({"device": "cpu"} if "device" in kwargs else {})})
                if moved.untyped_storage().data_ptr() == args[0].untyped_storage().data_ptr():
                    # nothing to convert: a tensor already there is returned as it is, one from the CPU copied
                    return args[0] if on_device(args[0]) else _wrap(moved.clone())
                return _wrap(moved)
            if device is not None and torch.device(device).type == "cpu" and any_on:
                return _plain(func(_plain(args[0]), *args[1:], **kwargs)).clone()
        if _targets_device(kwargs.get("device")):   # torch.zeros(..., device=device) and the like
            kwargs = {**kwargs, "device": "cpu"}
            return tree_map(_wrap, func(*args, **kwargs))

        if func not in CROSSING:
            off = [t for t in tensors if not on_device(t) and t.dim() > 0]
            if any_on and off:
                raise _mix_error(func, tensors)
        result = func(*args, **kwargs)
        if func == GRAD_GETTER and any_on:   # autograd's gradients of GPU parameters
            return _wrap(result)
        if not any_on or isinstance(result, torch.Size):   # a shape stays a torch.Size
            return result
        return tree_map(_wrap, result)


def _load_onto_device(load):
    """torch.load with ``map_location=DEVICE`` (as a resume on a GPU asks): the tensors as OnDevice."""
    def load_there(f, map_location=None, *args, **kwargs):
        if isinstance(map_location, (str, torch.device)) and _targets_device(map_location):
            return tree_map(_wrap, load(f, "cpu", *args, **kwargs))
        return load(f, map_location, *args, **kwargs)
    return load_there


_mode = None


def emulate() -> torch.device:
    """Start the emulation in this process (for good) and make every ``default_device`` return DEVICE."""
    global _mode
    import sys

    if _mode is None:
        # Module.to then puts new Parameter objects in the model, which can be OnDevice tensors
        torch.__future__.set_overwrite_module_params_on_conversion(True)
        torch.load = _load_onto_device(torch.load)
        _mode = SecondDevice()
        _mode.__enter__()
        import alexnet_edu  # noqa: F401  (its modules, so that their default_device can be replaced)
        for name, module in list(sys.modules.items()):
            if name.split(".")[0] == "alexnet_edu" and hasattr(module, "default_device"):
                module.default_device = lambda: DEVICE
    return DEVICE
