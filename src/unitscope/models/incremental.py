"""Incremental inference: a layer's output for many small edits of one input, recomputing only what each edit reaches.

An occluder changes a small patch of the image.  Through a convolution (or
a pooling) the change spreads to the output positions whose window meets
it, a rectangle a little larger than the patch (by the kernel, divided by
the stride); an elementwise layer keeps it where it is.  So the clean
image's activations are computed once, and for each edited copy only that
rectangle of each layer is recomputed from the previous layer's activations
(clean outside the rectangle), many copies in one batch: Krypton's exact
mode (Nakandala, Kumar and Papakonstantinou, "Incremental and approximate
inference for faster occlusion-based deep CNN explanations", SIGMOD 2019).
Every copy of a batch recomputes a rectangle of the same size at each layer
(the largest any of them needs, clamped inside the map), so a batch is one
convolution call per layer.

Only what the caller reads is recomputed: given the output positions that
matter (the ``targets`` of :meth:`IncrementalChain.prepare`), each layer's
rectangle is also cut to the positions those targets depend on.

Where it is exact
-----------------
The network up to the layer must be a chain of modules, each taking the
previous one's output (``nn.Sequential`` and ``forward`` methods that only
call modules in turn), of these types:

* ``Conv2d`` with zero padding (any kernel, stride, padding -- ``"same"``
  included --, dilation and groups);
* ``MaxPool2d`` (ceil mode too; not ``return_indices``), ``AvgPool2d``
  without ceil mode (and with ``count_include_pad`` where it pads);
* elementwise ones: activations (``ReLU`` ... ``GELU``, ``PReLU``),
  ``BatchNorm2d`` in eval with running statistics, ``LocalResponseNorm``
  (it mixes channels, not positions), ``Dropout`` in eval, ``Identity``.

Then the result is the full forward's up to rounding (convolutions of a
smaller input sum in another order: about 1e-6 of the activations in
float32).  Anything else -- a branch (residual add, concatenation), global
or adaptive pooling, attention, normalisation over positions, a functional
op between modules, an unknown module -- is not a chain of these, and
:meth:`IncrementalChain.of` returns the reason instead of a chain: the
caller runs the full forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unitscope.hooks import resolve_layer

__all__ = ["IncrementalChain", "ELEMENTWISE"]

#: Modules that act on each position alone (in eval mode), so an edit stays where it is.
ELEMENTWISE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Identity,
    nn.Dropout, nn.Dropout2d, nn.LocalResponseNorm, nn.BatchNorm2d,
)


def _pair(value) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


@dataclass
class _Step:
    """One module of the chain: elementwise (``kernel is None``) or a window op run without padding."""

    module: nn.Module
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # left, right, top, bottom (F.pad's order)
    pad_value: float = 0.0
    op: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def reach(self) -> tuple[int, int]:
        """Input rows (columns) one output position reads, minus one."""
        return tuple(d * (k - 1) for d, k in zip(self.dilation, self.kernel))


def _step(module: nn.Module) -> _Step | str:
    """The step of ``module``, or why it cannot be one."""
    if isinstance(module, nn.BatchNorm2d) and not module.track_running_stats:
        return f"{type(module).__name__} without running statistics normalises over positions"
    if isinstance(module, ELEMENTWISE):
        return _Step(module)
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            return f"Conv2d with padding_mode={module.padding_mode!r}"
        left, right, top, bottom = (int(p) for p in module._reversed_padding_repeated_twice)
        return _Step(module, _pair(module.kernel_size), _pair(module.stride), _pair(module.dilation),
                     (left, right, top, bottom),
                     op=lambda x, m=module: F.conv2d(x, m.weight, m.bias, m.stride, 0, m.dilation, m.groups))
    if isinstance(module, nn.MaxPool2d):
        if module.return_indices:
            return "MaxPool2d with return_indices"
        ph, pw = _pair(module.padding)
        kernel, dilation = _pair(module.kernel_size), _pair(module.dilation)
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        return _Step(module, kernel, stride, dilation, (pw, pw, ph, ph), float("-inf"),
                     op=lambda x: F.max_pool2d(x, kernel, stride, 0, dilation))
    if isinstance(module, nn.AvgPool2d):
        ph, pw = _pair(module.padding)
        if module.ceil_mode:
            return "AvgPool2d with ceil_mode (its border windows divide by fewer pixels)"
        if (ph or pw) and not module.count_include_pad:
            return "AvgPool2d with padding and count_include_pad=False"
        kernel = _pair(module.kernel_size)
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        return _Step(module, kernel, stride, (1, 1), (pw, pw, ph, ph),
                     op=lambda x, m=module: F.avg_pool2d(x, kernel, stride, 0, divisor_override=m.divisor_override))
    return f"{type(module).__name__} is not a layer incremental inference supports"


class _Stop(Exception):
    pass


def _executed_chain(model: nn.Module, layer: str, sample: torch.Tensor) -> tuple[list[nn.Module], torch.Tensor] | str:
    """The leaf modules ``model`` runs on ``sample`` up to ``layer`` and the layer's output, if they form
    a chain, else why not."""
    target = resolve_layer(model, layer)
    inside = {id(m) for m in target.modules()}
    calls, handles = [], []

    def record(module, inputs, output):
        calls.append((module, inputs, output))

    def stop(module, inputs, output):
        calls.append((None, inputs, output))
        raise _Stop

    try:
        for module in model.modules():
            if not list(module.children()):
                handles.append(module.register_forward_hook(record))
        handles.append(target.register_forward_hook(stop))
        model(sample)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if not calls or calls[-1][0] is not None:
        return f"the forward pass never reached {layer!r}"
    (*leaves, (_, _, layer_output)) = calls
    if not leaves or id(leaves[-1][0]) not in inside:
        return f"{layer!r} is not a module the forward pass runs"
    previous, names = sample, {id(m): name for name, m in model.named_modules()}
    for module, inputs, output in leaves:
        if len(inputs) != 1 or inputs[0] is not previous:
            return (f"the network is not a chain of modules up to {layer!r} ({names[id(module)]!r}, a "
                    f"{type(module).__name__}, does not take the previous module's output: a branch or a "
                    "functional step)")
        previous = output
    if layer_output is not previous:
        return f"the output of {layer!r} is not that of its last module"
    return [module for module, _, _ in leaves], layer_output.clone()


@dataclass
class _Prepared:
    """One input's clean activations, and what each step must recompute for its targets."""

    padded: list  # per window step: its clean input padded, (1, C, Hp, Wp)
    sizes: list  # per step: output (H, W)
    need: list  # per step: (y0, y1, x0, x1) of its output the targets depend on
    output: torch.Tensor  # (1, C, H, W) the clean output


class IncrementalChain:
    """A layer's output recomputed only where an input edit reaches (see the module docstring).

    Build it with :meth:`of`; :meth:`prepare` one clean input (and the output
    positions to read); :meth:`run` a batch of edited copies of prepared inputs.
    """

    def __init__(self, steps: list[_Step]) -> None:
        self.steps = steps
        #: each step's entry in ``_Prepared.padded`` (window steps only)
        self.window_index = np.cumsum([s.kernel is not None for s in steps]) - 1
        #: the step :meth:`read` computes at the read positions only (None: the last rectangle is read)
        self.targeted = _targeted_tail(steps)

    @classmethod
    def of(cls, model: nn.Module, layer: str, sample: torch.Tensor) -> tuple["IncrementalChain | None", str]:
        """``(chain, "")`` for ``layer`` of ``model`` (in eval mode), or ``(None, reason)`` when it is not exact.

        ``sample`` (1, 3, H, W): an input of the size the chain will see; its
        forward up to ``layer`` is recomputed by the chain and compared.
        """
        with torch.inference_mode():
            found = _executed_chain(model, layer, sample)
            if isinstance(found, str):
                return None, found
            modules, expected = found
            steps = []
            for module in modules:
                step = _step(module)
                if isinstance(step, str):
                    return None, step
                steps.append(step)
            chain = cls(steps)
            again = chain.prepare(sample.clone(), targets=[(0, 0)]).output
            if expected.ndim != 4 or again.shape != expected.shape or not torch.allclose(
                    again, expected, rtol=1e-4, atol=1e-5 * (float(expected.abs().max()) + 1e-12)):
                return None, (f"its modules run in turn do not give the output of {layer!r} (forward has a step "
                              "that is no module, such as an in-place add)")
        return chain, ""

    def prepare(self, image: torch.Tensor, *, targets) -> _Prepared:
        """The clean activations of ``image`` (1, 3, H, W) and, for output positions ``targets``
        (``[(i, j)]``), the part of each step's output they depend on."""
        padded, sizes = [], []
        x = image
        for step in self.steps:
            if step.kernel is not None:
                h, w = x.shape[-2:]
                left, right, top, bottom = step.pad
                x_pad = F.pad(x, (left, right, top, bottom), value=step.pad_value) if any(step.pad) else x.clone()
                x = step.module(x)
                # ceil-mode pooling reads past the padding: extend with the pad value
                need_h = (x.shape[-2] - 1) * step.stride[0] + step.reach[0] + 1
                need_w = (x.shape[-1] - 1) * step.stride[1] + step.reach[1] + 1
                extra = (0, max(0, need_w - x_pad.shape[-1]), 0, max(0, need_h - x_pad.shape[-2]))
                padded.append(F.pad(x_pad, extra, value=step.pad_value) if any(extra) else x_pad)
            else:
                x = step.module(x)
            sizes.append(tuple(x.shape[-2:]))
        rows = [i for i, _ in targets]
        cols = [j for _, j in targets]
        box = (min(rows), max(rows) + 1, min(cols), max(cols) + 1)
        need = [None] * len(self.steps)
        for k in range(len(self.steps) - 1, -1, -1):
            need[k] = box
            step = self.steps[k]
            if step.kernel is not None:
                in_h, in_w = sizes[k - 1] if k else tuple(image.shape[-2:])
                box = (*_needed(box[0], box[1], step.stride[0], step.pad[2], step.reach[0], in_h),
                       *_needed(box[2], box[3], step.stride[1], step.pad[0], step.reach[1], in_w))
        return _Prepared(padded, sizes, need, x)

    def run(self, prepared: list[_Prepared], which: np.ndarray, inputs: torch.Tensor, changed: np.ndarray, *,
            stop: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
        """The recomputed part of the output for a batch of edited copies.

        Parameters
        ----------
        prepared : list of _Prepared
            The clean inputs the copies are edits of.
        which : ndarray (B,)
            Each copy's entry of ``prepared``.
        inputs : Tensor (B, 3, H, W)
            The edited copies.
        changed : ndarray (B, 4)
            Each copy's edited rectangle ``(y0, y1, x0, x1)`` (empty: ``y0 >= y1``).
        stop : int, keyword-only
            Run only the steps before this one (default: all).

        Returns
        -------
        values : Tensor (B, C, h, w)
            Each copy's output over a rectangle holding every position that
            both changed and matters to the targets.
        origin : ndarray (B, 2)
            Each rectangle's top-left position in the output.
        """
        values, origin = inputs, np.zeros((len(inputs), 2), dtype=np.int64)
        h, w = inputs.shape[-2:]
        affected = np.clip(changed.astype(np.int64), 0, [h, h, w, w])
        affected[(affected[:, 0] >= affected[:, 1]) | (affected[:, 2] >= affected[:, 3])] = 0
        needs = np.asarray([p.need for p in prepared])[which]  # (B, steps, 4)
        for k, step in enumerate(self.steps[:stop]):
            if step.kernel is None:
                values = step.module(values)
                continue
            out_h, out_w = prepared[0].sizes[k]
            need = needs[:, k]
            starts, sizes = [], []
            for axis, (size, pad) in enumerate(((out_h, step.pad[2]), (out_w, step.pad[0]))):
                a0, a1 = _affected(affected[:, 2 * axis], affected[:, 2 * axis + 1], step.stride[axis], pad,
                                   step.reach[axis], size)
                affected[:, 2 * axis], affected[:, 2 * axis + 1] = a0, a1
                i0, i1 = np.maximum(a0, need[:, 2 * axis]), np.minimum(a1, need[:, 2 * axis + 1])
                length = int(max(1, (i1 - i0).max(initial=1)))
                start = np.where(i1 > i0, i0, need[:, 2 * axis])
                starts.append(np.clip(start, 0, size - length))
                sizes.append(length)
            index = self.window_index[k]
            clean = (torch.cat([p.padded[index] for p in prepared]) if len(prepared) > 1
                     else prepared[0].padded[index])
            patch = _patch(clean, which, values, origin, step, starts, sizes)
            values = step.op(patch)
            origin = np.stack(starts, axis=1)
        return values, origin

    def read(self, prepared: list[_Prepared], which: np.ndarray, inputs: torch.Tensor, changed: np.ndarray,
             copy: torch.Tensor, unit: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """The output at ``(copy, unit, row, col)`` (each ``(N,)``; the positions among the targets the
        copies' inputs were prepared with) for a batch of edited copies: ``(N,)``.

        The arguments before ``copy`` are those of :meth:`run`.  When the chain ends in a convolution or
        a pooling followed only by parameter-free elementwise steps, that step is computed for the
        channels read alone, over the rectangle of the positions read.
        """
        last = self.targeted
        if last is None:
            values, origin = self.run(prepared, which, inputs, changed)
            return _read_rectangle(values, origin, prepared, which, copy, unit, row, col)
        values, origin = self.run(prepared, which, inputs, changed, stop=last)
        step, device = self.steps[last], inputs.device
        need = np.asarray([p.need[last] for p in prepared])[which]  # (B, 4): every read lies inside
        starts, sizes = [], []
        for axis, size in enumerate(prepared[0].sizes[last]):
            length = int((need[:, 2 * axis + 1] - need[:, 2 * axis]).max())
            starts.append(np.clip(need[:, 2 * axis], 0, size - length))
            sizes.append(length)
        patch = _patch(prepared[0].padded[self.window_index[last]] if len(prepared) == 1 else
                       torch.cat([p.padded[self.window_index[last]] for p in prepared]),
                       which, values, origin, step, starts, sizes)
        channels, slot = torch.unique(unit, return_inverse=True)
        out = _channels(step, patch, channels)
        for step in self.steps[last + 1:]:
            out = step.module(out)
        sy, sx = (torch.as_tensor(start, device=device) for start in starts)
        return out[copy, slot, row - sy[copy], col - sx[copy]]


def _read_rectangle(values, origin, prepared, which, copy, unit, row, col) -> torch.Tensor:
    """Read ``(copy, unit, row, col)`` in the recomputed rectangles, the clean output outside them."""
    device = values.device
    clean = torch.cat([p.output for p in prepared])
    origin = torch.as_tensor(origin, device=device)
    vh, vw = values.shape[-2:]
    i, j = row - origin[copy, 0], col - origin[copy, 1]
    inside = (i >= 0) & (i < vh) & (j >= 0) & (j < vw)
    recomputed = values[copy, unit, i.clamp(0, vh - 1), j.clamp(0, vw - 1)]
    return torch.where(inside, recomputed, clean[torch.as_tensor(which, device=device)[copy], unit, row, col])


def _targeted_tail(steps: list[_Step]) -> int | None:
    """The last window step, when :meth:`IncrementalChain.read` can compute it for the channels it reads
    alone (a convolution or a pooling, then only parameter-free elementwise steps)."""
    windows = [k for k, step in enumerate(steps) if step.kernel is not None]
    if not windows:
        return None
    tail = steps[windows[-1] + 1:]
    if any(isinstance(step.module, (nn.BatchNorm2d, nn.PReLU, nn.LocalResponseNorm)) for step in tail):
        return None
    return windows[-1]


def _channels(step: _Step, patch: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """``step``'s output over ``patch`` for output ``channels`` alone ``(B, len(channels), h, w)``: a
    convolution with only those filters (all of them when grouped), a pooling of only those channels."""
    module = step.module
    if isinstance(module, nn.Conv2d):
        if module.groups > 1:
            return step.op(patch)[:, channels]
        bias = module.bias[channels] if module.bias is not None else None
        return F.conv2d(patch, module.weight[channels], bias, module.stride, 0, module.dilation)
    return step.op(patch[:, channels])


def _affected(a0, a1, stride, pad, reach, size):
    """Output positions whose window meets input positions ``[a0, a1)`` (arrays), clamped to ``[0, size)``."""
    empty = a0 >= a1
    lo = np.clip(-((-(a0 + pad - reach)) // stride), 0, size)
    hi = np.clip((a1 - 1 + pad) // stride + 1, 0, size)
    hi = np.maximum(lo, hi)
    return np.where(empty, 0, lo), np.where(empty, 0, hi)


def _needed(n0, n1, stride, pad, reach, size):
    """Input positions (of ``size``) that output positions ``[n0, n1)`` read."""
    return max(0, n0 * stride - pad), min(size, (n1 - 1) * stride - pad + reach + 1)


def _patch(clean, which, values, origin, step: _Step, starts, sizes) -> torch.Tensor:
    """Each copy's input to ``step`` over its output rectangle: the clean padded input with the copy's
    recomputed rectangle of the previous step pasted in, ``(B, C, area_h, area_w)``.

    A loop of slice copies, each one contiguous block: on CPUs faster than one gather of the
    clean rectangles and one scatter of the recomputed ones (measured with mini_alexnet).
    """
    (sy, sx), (lh, lw) = starts, sizes
    area_h = (lh - 1) * step.stride[0] + step.reach[0] + 1
    area_w = (lw - 1) * step.stride[1] + step.reach[1] + 1
    vh, vw = values.shape[-2:]
    patch = torch.empty((len(values), clean.shape[1], area_h, area_w), dtype=clean.dtype, device=clean.device)
    top, left = step.pad[2], step.pad[0]
    for b, (g, y, x, oy, ox) in enumerate(zip(which.tolist(), (sy * step.stride[0]).tolist(),
                                              (sx * step.stride[1]).tolist(), (origin[:, 0] + top).tolist(),
                                              (origin[:, 1] + left).tolist())):
        patch[b] = clean[g, :, y:y + area_h, x:x + area_w]
        y0, y1 = max(y, oy), min(y + area_h, oy + vh)
        x0, x1 = max(x, ox), min(x + area_w, ox + vw)
        if y1 > y0 and x1 > x0:
            patch[b, :, y0 - y:y1 - y, x0 - x:x1 - x] = values[b, :, y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return patch
