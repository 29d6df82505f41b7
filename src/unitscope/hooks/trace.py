"""Context managers that record the output of named layers during a forward pass.

Layers are addressed by the dotted names of ``model.named_modules()``
(``"features.10"``, ``"layer4.1.conv2"``).  Hooks exist only inside the
``with`` block and are removed in ``finally``, so a failing forward pass
never leaves one behind.  The recorded output is a copy: an in-place ReLU
that follows the layer cannot change it.

Examples
--------
>>> with Trace(model, "conv5", stop=True) as t:   # doctest: +SKIP
...     model(images)
>>> t.output.shape                                 # doctest: +SKIP
torch.Size([8, 64, 16, 16])
"""

from __future__ import annotations

import difflib
import weakref
from collections import OrderedDict
from typing import Callable, Iterable

import torch
from torch import nn

__all__ = ["StopForward", "Trace", "TraceDict", "layer_names", "resolve_layer"]


class StopForward(Exception):
    """Raised inside a hook to stop the forward pass after the last traced layer.

    ``Trace`` and ``TraceDict`` swallow it on exit, so the caller simply
    writes ``model(x)`` inside the block.
    """


def layer_names(model: nn.Module) -> list[str]:
    """Return the dotted names of every sub-module of ``model``, in order.

    The root module (name ``""``) is left out.
    """
    return [name for name, _ in model.named_modules() if name]


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """Return the sub-module called ``name``.

    Raises
    ------
    LookupError
        If ``model`` has no such layer; the message lists close matches.
    """
    modules = dict(model.named_modules())
    if name and name in modules:
        return modules[name]
    names = layer_names(model)
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    raise LookupError(
        f"{type(model).__name__} has no layer named {name!r}{hint} (layers: {shown})"
    )


def _copy(output, *, detach: bool, clone: bool):
    if isinstance(output, torch.Tensor):
        if detach:
            output = output.detach()
        return output.clone() if clone else output
    if isinstance(output, (tuple, list)):
        return type(output)(_copy(o, detach=detach, clone=clone) for o in output)
    return output


class Trace:
    """Record the output of one layer during forward passes.

    Parameters
    ----------
    model : nn.Module
    layer : str
        Dotted module name.
    stop : bool, keyword-only
        Stop the forward pass right after this layer (the rest of the network
        does not run; the model's return value is then unavailable).
    detach, clone : bool, keyword-only
        Detach from the autograd graph / copy the output (default both True:
        a following in-place op cannot change the recorded tensor).
    edit : callable, keyword-only
        Optional ``edit(output) -> output`` applied to the layer's output
        before the rest of the network sees it (used by ablation).

    Attributes
    ----------
    output : torch.Tensor or None
        The most recent output of the layer.

    Raises
    ------
    LookupError
        If the layer does not exist (on construction).
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str,
        *,
        stop: bool = False,
        detach: bool = True,
        clone: bool = True,
        edit: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.model = model
        self.layer = layer
        self.module = resolve_layer(model, layer)
        self.stop = stop
        self.detach = detach
        self.clone = clone
        self.edit = edit
        self.output = None
        self._handle = None

    def _hook(self, module, inputs, output):
        if self.edit is not None:
            output = self.edit(output)
        self.output = _copy(output, detach=self.detach, clone=self.clone)
        if self.stop:
            raise StopForward()
        return output

    def __enter__(self) -> "Trace":
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close()
        return exc_type is not None and issubclass(exc_type, StopForward)

    def close(self) -> None:
        """Remove the hook (idempotent)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


class TraceDict(OrderedDict):
    """Record the outputs of several layers; ``td[name].output`` per layer.

    Parameters
    ----------
    model : nn.Module
    layers : iterable of str
        Dotted module names (unknown names raise ``LookupError``).
    stop : bool, keyword-only
        Stop the forward pass once every listed layer has produced its
        output, so later layers do not run.
    detach, clone, edit
        As for :class:`Trace`; ``edit`` is a ``{layer: callable}`` mapping.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Iterable[str],
        *,
        stop: bool = False,
        detach: bool = True,
        clone: bool = True,
        edit: dict[str, Callable] | None = None,
    ) -> None:
        super().__init__()
        layers = list(dict.fromkeys(layers))
        if not layers:
            raise ValueError("TraceDict needs at least one layer name")
        edit = edit or {}
        unknown = set(edit) - set(layers)
        if unknown:
            raise LookupError(f"edit given for layers that are not traced: {sorted(unknown)}")
        self.stop = stop
        self._pending: set[str] = set()
        for name in layers:
            self[name] = Trace(model, name, detach=detach, clone=clone, edit=edit.get(name))
        self._wrap_stop()

    def _wrap_stop(self) -> None:
        if not self.stop:
            return
        # The hooks hold the pending set and a weak reference to their trace, never ``self`` or the
        # trace itself: a TraceDict -> Trace -> hook -> Trace cycle kept every batch's traced outputs
        # alive until the garbage collector's next full pass (a dissection grew by about one batch
        # of activations per batch, tens of MB, benchmarks/dissect_scale.py).
        pending = self._pending
        for name, trace in self.items():

            def hook(module, inputs, output, _name=name, _trace=weakref.ref(trace), _orig=type(trace)._hook):
                result = _orig(_trace(), module, inputs, output)
                pending.discard(_name)
                if not pending:
                    raise StopForward()
                return result

            trace._hook = hook

    def __enter__(self) -> "TraceDict":
        self._pending.clear()
        self._pending.update(self.keys())
        try:
            for trace in self.values():
                trace.__enter__()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close()
        return exc_type is not None and issubclass(exc_type, StopForward)

    def close(self) -> None:
        """Remove every hook (idempotent)."""
        for trace in self.values():
            trace.close()
