"""A second device on a CPU-only machine, for tests: catches the device mix-ups that crash on a GPU.

On a CPU, a model left on the CPU and data moved to ``default_device()`` are on the same device, so a
chapter that forgets a ``.to(device)`` runs here and crashes on a GPU ("Input type
(torch.cuda.FloatTensor) and weight type (torch.FloatTensor) should be the same"). Under
:func:`emulate`, ``default_device()`` returns ``DEVICE``, and every tensor moved or created there is
an :class:`OnDevice`: a CPU tensor that stands for one on the GPU. A ``TorchFunctionMode`` follows
them through every operation and raises as CUDA would when an operation mixes them with ordinary CPU
tensors, when one is turned into a NumPy array or used as the CPU's random state, and so on.

The arithmetic is the CPU's, so results are the same as without the emulation. What it does not
check: work in other threads (the mode belongs to the thread that started it), and what only a real
GPU does differently (code under ``device.type == "cuda"``: mixed precision, channels_last, fused
SGD, the GPU's random generator). The tests' notebook kernels start it from an IPython startup file
(the repository's ``conftest.py``).
"""

import importlib.abc
import sys

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


def _host_copy(t):
    """A device tensor brought to the CPU: a plain tensor with its own storage, as a copy from a GPU is."""
    return _plain(t).clone()


def _targets_device(device) -> bool:
    return isinstance(device, (str, torch.device)) and torch.device(device) == DEVICE


def _mix_error(func) -> RuntimeError:
    return RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                        f"{NAME} and cpu! (in {getattr(func, '__name__', func)}; on a real GPU this "
                        f"crashes too: move the model or the tensor with .to(device))")


# Property getters come as a new method-wrapper on every access, so they are compared with ==.
DEVICE_GETTER, GRAD_GETTER = torch.Tensor.device.__get__, torch.Tensor.grad.__get__
# Calls that CUDA lets take tensors from both devices: copies between them, and reading metadata.
# (module_load: load_state_dict copying a CPU state dict into a model on the device.)
CROSSING = {torch.Tensor.copy_, torch.Tensor.module_load, torch.Tensor.to, torch.Tensor.cpu,
            torch.Tensor.__repr__, torch.Tensor.__format__, torch._has_compatible_shallow_copy_type}
INDEXING = {torch.Tensor.__getitem__, torch.Tensor.__setitem__}   # a GPU tensor takes CPU indices
JOINING = {torch.stack, torch.cat, torch.hstack, torch.vstack}     # no CPU scalars among GPU tensors


def _to(func, args, kwargs):
    """``Tensor.to`` under the emulation: to DEVICE makes an OnDevice copy (a tensor already there is
    returned as it is); from DEVICE to the CPU makes a plain copy; anything else (a dtype) as usual."""
    x = args[0]
    like = args[1] if len(args) > 1 and isinstance(args[1], torch.Tensor) else None   # x.to(other)
    if like is not None:
        device = DEVICE if on_device(like) else like.device
    else:
        parse = {k: v for k, v in kwargs.items() if k != "copy"}
        device = torch._C._nn._parse_to(*args[1:], **parse)[0]
    if _targets_device(device):
        positional = [("cpu" if isinstance(a, (torch.device, str, torch.Tensor)) else a) for a in args[1:]]
        kwargs = {**kwargs, **({"device": "cpu"} if "device" in kwargs else {}),
                  **({"dtype": like.dtype} if like is not None else {})}
        moved = func(_plain(x), *positional, **kwargs)
        if moved.untyped_storage().data_ptr() != x.untyped_storage().data_ptr():
            return _wrap(moved)                    # converted (dtype, layout): a new tensor there
        return x if on_device(x) else _wrap(moved.clone())
    if device is not None and on_device(x):        # to the CPU
        return _host_copy(func(_plain(x), *args[1:], **kwargs))
    return None                                    # not a move: the general rule applies


class SecondDevice(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        any_on = any(on_device(t) for t in tensors)
        first_on = bool(args) and on_device(args[0])

        # what CUDA refuses or does differently for a tensor on the device
        if func == DEVICE_GETTER and first_on:
            return DEVICE
        if func in (torch.Tensor.numpy, torch.Tensor.__array__) and first_on and not kwargs.get("force"):
            raise TypeError(f"can't convert {NAME} device type tensor to numpy. Use Tensor.cpu() to copy "
                            f"the tensor to host memory first.")
        if func in (torch.Tensor.__repr__, torch.Tensor.__format__) and first_on:   # tensor(...), f"{t:.3f}"
            return func(_plain(args[0]), *args[1:], **kwargs)
        if func is torch.Tensor.__reduce_ex__ and first_on:   # torch.save: written as a CPU tensor
            return func(_plain(args[0]), *args[1:], **kwargs)
        if func is torch.Tensor.__deepcopy__ and first_on:   # copy.deepcopy(model): the copy stays there
            source = args[0].detach().as_subclass(torch.Tensor)
            copied = _wrap(func(source, *args[1:], **kwargs)).requires_grad_(args[0].requires_grad)
            copied._is_param = getattr(args[0], "_is_param", False)
            return copied
        if func is torch.Tensor.cpu:
            return _host_copy(func(*args, **kwargs)) if first_on else func(*args, **kwargs)
        if func is torch.Tensor.to:
            moved = _to(func, args, kwargs)
            if moved is not None:
                return moved

        # tensors made there: torch.zeros(..., device=device), x.new_zeros(...), torch.rand_like(x)
        if "device" in kwargs and kwargs["device"] is not None:
            if not _targets_device(kwargs["device"]):
                return func(*args, **kwargs)       # made on the CPU, from whatever
            generator = kwargs.get("generator")
            if generator is not None and generator.device.type == "cpu":
                raise RuntimeError(f"Expected a 'cuda' device type for generator but found 'cpu' (emulated: "
                                   f"{getattr(func, '__name__', func)} makes its tensor on {NAME})")
            return tree_map(_wrap, func(*args, **{**kwargs, "device": "cpu"}))

        # one operation, tensors from both devices
        if func in INDEXING:
            if not first_on and any(on_device(t) and t.dim() > 0 for t in tensors[1:]):
                raise _mix_error(func)             # a CPU tensor indexed with (or given) GPU tensors
        elif func not in CROSSING:
            allowed = 0 if func in JOINING else 1  # CUDA takes 0-d CPU tensors in arithmetic
            if any_on and any(not on_device(t) and t.dim() >= allowed for t in tensors):
                raise _mix_error(func)

        result = func(*args, **kwargs)
        if func == GRAD_GETTER and first_on:      # autograd's gradients of GPU parameters
            return _wrap(result)
        if not any_on or isinstance(result, torch.Size):   # a shape stays a torch.Size
            return result
        return tree_map(_wrap, result)


def _refuse_device_rng_state(set_rng_state):
    def set_cpu_rng_state(new_state):
        if on_device(new_state):
            raise TypeError(f"RNG state must be a torch.ByteTensor on the CPU, not on {NAME}")
        return set_rng_state(new_state)
    return set_cpu_rng_state


def _load_onto_device(load):
    """torch.load with ``map_location=DEVICE`` (as a resume on a GPU asks): the tensors as OnDevice."""
    def load_there(f, map_location=None, *args, **kwargs):
        if _targets_device(map_location):
            return tree_map(_wrap, load(f, "cpu", *args, **kwargs))
        return load(f, map_location, *args, **kwargs)
    return load_there


_mode = None


def emulate() -> torch.device:
    """Start the emulation in this process (for good) and make every ``default_device`` return DEVICE."""
    global _mode
    if _mode is None:
        # Module.to then swaps each parameter's contents for an OnDevice tensor's, keeping the object
        # (so that an optimiser made before the move still holds the model's parameters, as on CUDA)
        torch.__future__.set_swap_module_params_on_conversion(True)
        torch.load = _load_onto_device(torch.load)
        torch.set_rng_state = _refuse_device_rng_state(torch.set_rng_state)
        _mode = SecondDevice()
        _mode.__enter__()
        for name, module in list(sys.modules.items()):     # the package's modules imported so far
            if name.split(".")[0] == "alexnet_edu" and hasattr(module, "default_device"):
                module.default_device = lambda: DEVICE
        sys.meta_path.insert(0, _PatchWhenImported())       # and those imported later
    return DEVICE


class _PatchWhenImported(importlib.abc.MetaPathFinder):
    """Replaces ``alexnet_edu.train.default_device`` as soon as that module has run, before any other
    module copies it (``from .train import default_device``): also for a package that is installed only
    after the emulation started, as a Colab chapter's setup cell does."""

    def find_spec(self, name, path, target=None):
        if name != "alexnet_edu.train":
            return None
        for finder in sys.meta_path[sys.meta_path.index(self) + 1:]:    # the finders that would find it
            spec = getattr(finder, "find_spec", lambda *args: None)(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    """The module's own loader, which then points the module's ``default_device`` at the device."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        module.default_device = lambda: DEVICE

    def __getattr__(self, name):              # get_source (tracebacks), get_filename, ...
        return getattr(self.loader, name)
