"""A CPU stand-in for a CUDA device, to find device bugs where there is no GPU.

Inside ``with FakeCuda():`` a tensor "on cuda" is an ordinary CPU tensor whose storage is
marked as being on the GPU; ``.device`` says ``cuda`` for it, and every torch call is checked
against the rules a real CUDA device enforces:

* tensors of one operation must be on one device, except CPU scalars (0-dim), ``copy_``,
  ``.to``/``.cpu``/``.cuda`` and indexing a CUDA tensor with CPU indices;
* indexing a CPU tensor with CUDA indices, or an indexed assignment (tensor indices) of a
  CUDA value into a CPU tensor (or the reverse) fails;
* ``.numpy()`` / ``np.asarray`` of a CUDA tensor fails;
* a CPU ``torch.Generator`` with a CUDA tensor (``randn(..., device="cuda", generator=g)``,
  ``t.uniform_(generator=g)``) fails.

Factories with ``device="cuda"``, ``.to("cuda")`` and ``.cuda()`` make marked tensors (copies,
as on a GPU); ``.cpu()`` / ``.to("cpu")`` unmarked copies; an operation with a marked input
marks its outputs. ``torch.cuda.is_available`` is left alone: patch it where a check needs it.

It is an approximation: operations that run in C++ without passing through
``__torch_function__`` (autograd's backward, ``nn.Parameter(t)``) are not seen, except
``.grad`` of a marked parameter, which is marked. It finds the usual bugs (a tensor made on the
CPU and mixed in, ``.numpy()`` on a result, a CPU generator), not every one; a real GPU run
(``scripts/check_cuda.sh``) is the final word.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.overrides import TorchFunctionMode, resolve_name

__all__ = ["FakeCuda", "FakeCudaError", "on_fake_cuda"]

CUDA = torch.device("cuda")


class FakeCudaError(RuntimeError):
    """What real CUDA would have raised."""


_ACTIVE: FakeCuda | None = None


def on_fake_cuda(obj: Any) -> bool:
    """Whether ``obj`` is a tensor marked as on the (fake) GPU of the active :class:`FakeCuda`."""
    return _ACTIVE is not None and _ACTIVE.marked(obj)


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in _tensors(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in _tensors(item)]
    return []


def _is_cuda(device: Any) -> bool | None:
    """True/False for a device given as str or torch.device, None for anything else."""
    if isinstance(device, (str, torch.device)):
        return torch.device(device).type == "cuda"
    return None


class FakeCuda(TorchFunctionMode):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        # data address -> a weak reference to the marked storage there: once that storage is
        # freed, another one at the same address (made by NumPy, autograd, ...) is not marked
        self._marks: dict[int, StorageWeakRef] = {}

    def __enter__(self):
        global _ACTIVE
        _ACTIVE = self
        return super().__enter__()

    def __exit__(self, *exc):
        global _ACTIVE
        _ACTIVE = None
        return super().__exit__(*exc)

    # ------------------------------------------------------------------ marks
    @staticmethod
    def _ptr(t: torch.Tensor) -> int | None:
        if t.layout != torch.strided or t.untyped_storage().nbytes() == 0:
            return None
        return t.untyped_storage().data_ptr()

    def marked(self, obj: Any) -> bool:
        if not isinstance(obj, torch.Tensor):
            return False
        ref = self._marks.get(self._ptr(obj))
        return ref is not None and not ref.expired()

    def _mark(self, out: Any, on_gpu: bool) -> Any:
        for t in _tensors(out):
            ptr = self._ptr(t)
            if ptr is None:
                continue
            if on_gpu:
                self._marks[ptr] = StorageWeakRef(t.untyped_storage())
            else:
                self._marks.pop(ptr, None)
        return out

    # ------------------------------------------------------------------ dispatch
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        name = resolve_name(func) or getattr(func, "__name__", repr(func))
        short = name.rsplit(".", 2)[-2] if name.endswith("__get__") else name.rsplit(".", 1)[-1]

        if name.endswith("__get__"):
            self_ = args[0]
            if short == "device":
                return CUDA if self.marked(self_) else func(*args, **kwargs)
            if short == "is_cuda":
                return self.marked(self_)
            out = func(*args, **kwargs)
            if short == "grad" and out is not None and self.marked(self_):
                self._mark(out, True)
            return out

        if short in ("numpy", "__array__") and self.marked(args[0]):
            raise FakeCudaError(f"{name}: can't convert a cuda tensor to numpy; use .cpu() first")
        if short == "cpu" and name.startswith("torch.Tensor"):
            return self._copy(args[0], False) if self.marked(args[0]) else args[0]
        if short == "cuda" and name.startswith("torch.Tensor"):
            return args[0] if self.marked(args[0]) else self._copy(args[0], True)
        if short == "to" and name.startswith("torch.Tensor"):
            return self._to(func, args, kwargs)
        if short in ("copy_", "_has_compatible_shallow_copy_type") or name.endswith("__set__"):
            return func(*args, **kwargs)  # across devices (t.data = other moves t), or no math
        if short in ("__getitem__", "__setitem__"):
            return self._index(func, name, short, args, kwargs)

        target = _is_cuda(kwargs.get("device"))
        if target is not None:  # a factory: torch.zeros(..., device=...), new_empty(...), ...
            kwargs["device"] = "cpu"
        tensors = _tensors(args) + _tensors(kwargs)
        gpu = [t for t in tensors if self.marked(t)]
        cpu = [t for t in tensors if not self.marked(t) and t.dim() > 0]
        if gpu and cpu:
            raise FakeCudaError(
                f"{name}: expected all tensors to be on the same device, found cuda "
                f"{[tuple(t.shape) for t in gpu][:3]} and cpu {[tuple(t.shape) for t in cpu][:3]}"
            )
        on_gpu = target if target is not None else bool(gpu)
        generator = kwargs.get("generator")
        if generator is not None and generator.device.type == "cpu" and on_gpu:
            raise FakeCudaError(f"{name}: a CPU torch.Generator used for a cuda tensor")
        out = func(*args, **kwargs)
        if short.endswith("_") and not short.startswith("__") and args:
            return out  # in place: the tensor stays where it is
        return self._mark(out, on_gpu)

    def _copy(self, t: torch.Tensor, on_gpu: bool) -> torch.Tensor:
        return self._mark(t.clone(), on_gpu)

    def _to(self, func, args, kwargs):
        self_ = args[0]
        target = _is_cuda(kwargs.pop("device", None))
        flags = []
        for item in args[1:]:  # .to(device, dtype, non_blocking, copy) / .to(other, ...) / ...
            if _is_cuda(item) is not None:
                target = _is_cuda(item)
            elif isinstance(item, torch.Tensor):  # .to(other): other's device and dtype
                target = self.marked(item)
                kwargs["dtype"] = item.dtype
            elif isinstance(item, torch.dtype):
                kwargs["dtype"] = item
            elif isinstance(item, bool):
                flags.append(item)
        kwargs.update(zip(("non_blocking", "copy"), flags, strict=False))
        if kwargs.get("dtype", 0) is None:
            del kwargs["dtype"]
        out = self_.to(**kwargs)
        here = self.marked(self_)
        if target is None or target == here:
            return self._mark(out, here) if out is not self_ else out
        if out is self_ or out.untyped_storage().data_ptr() == self_.untyped_storage().data_ptr():
            out = out.clone()
        return self._mark(out, target)

    def _index(self, func, name, short, args, kwargs):
        self_, index = args[0], args[1]
        index_tensors = [t for t in _tensors(index) if t.dim() > 0 or t.dtype == torch.bool]
        here = self.marked(self_)
        if not here and any(self.marked(t) for t in index_tensors):
            raise FakeCudaError(
                f"{name}: indices should be either on cpu or on the same device as the "
                "indexed tensor (cpu)"
            )
        if short == "__getitem__":
            return self._mark(func(*args, **kwargs), here)
        value = args[2]
        if (
            index_tensors
            and isinstance(value, torch.Tensor)
            and value.dim() > 0
            and self.marked(value) != here
        ):
            raise FakeCudaError(f"{name}: index_put_ of a value on another device")
        return func(*args, **kwargs)
