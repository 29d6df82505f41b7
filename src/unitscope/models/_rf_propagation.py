"""How a receptive field travels through a traced network (the machinery of :mod:`.receptive_field`).

An :class:`torch.fx.Interpreter` runs the traced graph on a dummy input and
gives every node a state (:mod:`._rf_states`): the window of input pixels its positions see, the
same window flattened into tokens, global, unknown, or nothing image-derived.
See the conventions in :mod:`unitscope.models.receptive_field`.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from unitscope.models._rf_states import _GLOBAL, _GLOBAL_ATTENTION, _Tokens, _Unknown, _Window, _pair, _union

def _tensors(value) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _grid(value, axes: tuple[int, int]):
    """The ``(H, W)`` sizes found at ``axes`` in the tensors of ``value``.

    Returns None when ``value`` holds no tensor, ``"flat"`` when a tensor has
    too few dims to hold them, ``"mixed"`` when tensors disagree.
    """
    grids = set()
    for t in _tensors(value):
        if t.dim() < max(4, max(-a for a in axes) + 1):  # batch, channels, rows, columns
            grids.add("flat")
        else:
            grids.add((t.shape[axes[0]], t.shape[axes[1]]))
    if not grids:
        return None
    return grids.pop() if len(grids) == 1 else "mixed"


def _permuted_axes(axes: tuple[int, int], order: list[int], ndim: int) -> tuple[int, int] | None:
    order = [o % ndim for o in order]
    try:
        return tuple(order.index(a % ndim) - ndim for a in axes)
    except ValueError:
        return None


_POOL = (nn.MaxPool2d, nn.AvgPool2d)
_ADAPTIVE = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_NOT_MODELLED = (
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Upsample,
    nn.PixelShuffle, nn.PixelUnshuffle, nn.Conv1d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool3d,
    nn.AvgPool1d, nn.AvgPool3d, nn.Fold, nn.Unfold, nn.MaxUnpool2d, nn.FractionalMaxPool2d,
    nn.LPPool2d,
)
# F.max_pool2d is a dispatcher object distinct from torch.max_pool2d; fx
# records whichever the network called.
_FUNCTIONAL_POOL = {
    F.max_pool2d: ("input", "kernel_size", "stride", "padding", "dilation"),
    torch.max_pool2d: ("input", "kernel_size", "stride", "padding", "dilation"),
    F.avg_pool2d: ("input", "kernel_size", "stride", "padding"),
}
_FUNCTIONAL_ADAPTIVE = (F.adaptive_avg_pool2d, F.adaptive_max_pool2d)
_FUNCTIONAL_NOT_MODELLED = (
    F.interpolate, F.conv2d, F.conv_transpose2d, F.pixel_shuffle, F.unfold, F.fold,
)
_PAD = (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d)


def _is_attention(module: nn.Module) -> bool:
    """Self-attention: every output token may read every input token.

    Windowed attention (Swin's ``ShiftedWindowAttention``) reads only its
    window, so it is not one step to global: its inner ops are followed.
    """
    name = type(module).__name__
    return isinstance(module, nn.MultiheadAttention) or (name.endswith("Attention") and "Window" not in name)


def _bind(names: tuple[str, ...], args: tuple, kwargs: dict) -> dict:
    bound = dict(zip(names, args))
    bound.update({k: v for k, v in kwargs.items() if k in names})
    return bound


def _adaptive(state, in_value, out_value):
    """Adaptive pooling: the identity, an exact pooling, or global."""
    if not isinstance(state, _Window):
        return state
    in_hw, out_hw = _grid(in_value, state.axes), _grid(out_value, state.axes)
    if not isinstance(in_hw, tuple) or not isinstance(out_hw, tuple):
        return _Unknown("adaptive pooling of a tensor without an image grid")
    if out_hw == (1, 1):
        return _GLOBAL
    if in_hw == out_hw:
        return state
    if all(i % o == 0 for i, o in zip(in_hw, out_hw)):
        kernel = tuple(i // o for i, o in zip(in_hw, out_hw))
        return state.compose(kernel, kernel, 0, 1)
    # Uneven bins overlap irregularly, so the units no longer share one
    # window size; every unit still sees a large part of the image: global.
    return _GLOBAL


def _padded(state, pad) -> Any:
    """Explicit padding ``(left, right[, top, bottom])`` of the last two dims moves the start."""
    if not isinstance(state, _Window):
        return state
    if state.axes != (-2, -1) or not isinstance(pad, (tuple, list)) or len(pad) not in (2, 4):
        return _Unknown(f"padding {pad!r}")
    left = int(pad[0])
    top = int(pad[2]) if len(pad) == 4 else 0
    (size_h, jump_h, start_h), (size_w, jump_w, start_w) = state.h, state.w
    return _Window(
        (size_h, jump_h, start_h - top * jump_h), (size_w, jump_w, start_w - left * jump_w)
    )


class _ModuleOutputTracer(fx.Tracer):
    """An fx tracer that remembers the output of every module call (leaf or not)."""

    def __init__(self) -> None:
        super().__init__()
        self.module_outputs: dict[str, Any] = {}

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        # an attention block is one step (every token reads every token), not its inner ops
        return _is_attention(m) or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m, forward, args, kwargs):
        out = super().call_module(m, forward, args, kwargs)
        try:
            name = self.path_of_module(m)
        except NameError:  # a module not registered under the root
            return out
        if name:
            # A module called several times (ResNet's shared ``relu``) keeps
            # its last output, as a forward hook would.
            self.module_outputs[name] = out
        return out


def _nodes_of(value) -> list[fx.Node]:
    if isinstance(value, fx.Proxy):
        return [value.node]
    if isinstance(value, (tuple, list)):
        return [n for item in value for n in _nodes_of(item)]
    if isinstance(value, dict):
        return [n for item in value.values() for n in _nodes_of(item)]
    return []


class _Propagator(fx.Interpreter):
    """Run the traced graph on a dummy input, computing each node's RF state."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.states: dict[fx.Node, Any] = {}

    def run_node(self, node: fx.Node) -> Any:
        result = super().run_node(node)
        self.states[node] = self._state(node, result)
        return result

    def _inputs(self, node: fx.Node) -> list[fx.Node]:
        return [n for n in node.all_input_nodes if self.states.get(n) is not None]

    def _first_input(self, node: fx.Node):
        arg = node.args[0] if node.args else next(iter(node.kwargs.values()), None)
        if isinstance(arg, fx.Node):
            return self.states.get(arg), self.env.get(arg)
        return None, None

    def _state(self, node: fx.Node, result: Any) -> Any:
        if node.op == "placeholder":
            return _Window((1, 1, 0), (1, 1, 0)) if isinstance(result, torch.Tensor) else None
        if node.op in ("get_attr", "output") or next(_tensors(result), None) is None:
            return None
        if node.op == "call_module":
            return self._module_state(node, self.module.get_submodule(node.target), result)
        return self._function_state(node, result)

    def _module_state(self, node: fx.Node, module: nn.Module, result: Any) -> Any:
        state, value = self._first_input(node)
        if _is_attention(module):
            inputs = [self.states[n] for n in self._inputs(node)]
            known = [s for s in inputs if not isinstance(s, _Unknown)]
            return _GLOBAL_ATTENTION if known or not inputs else inputs[0]
        if isinstance(module, nn.Conv2d):
            if not isinstance(state, _Window):
                return state
            padding = module.padding
            if isinstance(padding, str):
                # "same" pads dilation * (kernel - 1) // 2 in front (any odd
                # extra pixel goes at the end); "valid" pads nothing.
                padding = tuple(
                    d * (k - 1) // 2 if padding == "same" else 0
                    for k, d in zip(module.kernel_size, module.dilation)
                )
            return state.compose(module.kernel_size, module.stride, padding, module.dilation)
        if isinstance(module, _POOL):
            if not isinstance(state, _Window):
                return state
            stride = module.stride if module.stride is not None else module.kernel_size
            return state.compose(
                module.kernel_size, stride, module.padding, getattr(module, "dilation", 1)
            )
        if isinstance(module, _ADAPTIVE):
            return _adaptive(state, value, result)
        if isinstance(module, _PAD):
            return _padded(state, module.padding)
        if isinstance(module, (nn.Linear, nn.LazyLinear)):
            return self._pointwise_on_last_dim(node)
        if isinstance(module, nn.Flatten):
            return self._generic(node, result)
        if isinstance(module, _NOT_MODELLED):
            return _Unknown(f"{type(module).__name__} {node.target!r}")
        return self._generic(node, result)

    def _pointwise_on_last_dim(self, node: fx.Node) -> Any:
        """A Linear layer mixes its input's last dim: global unless that is channels."""
        state, _ = self._first_input(node)
        if (isinstance(state, _Window) and -1 not in state.axes) or state is _GLOBAL_ATTENTION:
            return state
        if isinstance(state, _Tokens):  # per token over the channels; over the tokens it mixes them
            return state if state.axis != -1 else _GLOBAL
        return _GLOBAL if state is not None and not isinstance(state, _Unknown) else state

    def _function_state(self, node: fx.Node, result: Any) -> Any:
        target = node.target
        if node.op == "call_function":
            if target in _FUNCTIONAL_POOL:
                bound = _bind(_FUNCTIONAL_POOL[target], node.args, node.kwargs)
                state = self.states.get(bound.get("input"))
                if not isinstance(state, _Window):
                    return state
                stride = bound.get("stride") or bound["kernel_size"]
                return state.compose(
                    bound["kernel_size"], stride, bound.get("padding", 0), bound.get("dilation", 1)
                )
            if target in _FUNCTIONAL_ADAPTIVE:
                state, value = self._first_input(node)
                return _adaptive(state, value, result)
            if target is F.linear:
                return self._pointwise_on_last_dim(node)
            if target is F.pad:
                state, _ = self._first_input(node)
                pad = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
                return _padded(state, pad)
            if target in _FUNCTIONAL_NOT_MODELLED:
                return _Unknown(f"{getattr(target, '__name__', target)}")
        if target in ("permute", "transpose", "swapaxes", "movedim") or target in (
            torch.permute, torch.transpose, torch.swapaxes,
        ):
            return self._permute(node, result)
        return self._generic(node, result)

    def _permute(self, node: fx.Node, result: Any) -> Any:
        state, value = self._first_input(node)
        if not isinstance(state, (_Window, _Tokens)) or not isinstance(value, torch.Tensor):
            return self._generic(node, result)
        ndim = value.dim()
        args = list(node.args[1:])
        name = node.target if isinstance(node.target, str) else node.target.__name__
        if name == "permute":
            order = list(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
            order = order or list(node.kwargs.get("dims", ()))
        else:  # transpose / swapaxes / movedim of two dims
            if len(args) != 2 or not all(isinstance(a, int) for a in args):
                return self._generic(node, result)
            a, b = (x % ndim for x in args)
            order = list(range(ndim))
            if name == "movedim":
                order.insert(b, order.pop(a))
            else:
                order[a], order[b] = order[b], order[a]
        if isinstance(state, _Tokens):
            axis = _permuted_axes((state.axis,), order, ndim)
            return _Tokens(state.window, axis[0], state.count, state.extra) if axis else _GLOBAL
        axes = _permuted_axes(state.axes, order, ndim)
        if axes is None:
            return _Unknown(f"{name} with dims {order}")
        return _Window(state.h, state.w, axes)

    def _generic(self, node: fx.Node, result: Any) -> Any:
        """Ops not known by name, judged by the shapes they produce.

        An op that keeps the image grid (elementwise maths, concatenation of
        channels, ``getitem`` on a ``chunk``, channel shuffles, norms) takes
        the union of its inputs' windows; an op that removes the grid
        (``flatten(1)``, ``mean((2, 3))``, ``view(n, -1)``) or reduces it to
        one position is global; an op that changes the grid in any other way
        (cropping, up-sampling) is unknown.
        """
        inputs = self._inputs(node)
        state = _union([self.states[n] for n in inputs])
        if isinstance(state, _Tokens):
            return self._token_op(node, state, result, inputs)
        if not isinstance(state, _Window):
            return state
        flattened = self._flattened(state, result, inputs)
        if flattened is not None:
            return flattened
        in_grids = {
            _grid(self.env[n], self.states[n].axes)
            for n in inputs if isinstance(self.states[n], _Window)
        }
        out_grid = _grid(result, state.axes)
        if len(in_grids) == 1 and out_grid == next(iter(in_grids)) and isinstance(out_grid, tuple):
            return state
        if out_grid == "flat" or out_grid == (1, 1):
            return _GLOBAL
        target = node.target
        target = target if isinstance(target, str) else getattr(target, "__name__", target)
        grids = sorted(map(str, in_grids))
        return _Unknown(f"{node.op} {target!s} changes the image grid {grids} -> {out_grid}")


    def _flattened(self, state: "_Window", result: Any, inputs: list) -> "_Tokens | None":
        """``(N, C, h, w) -> (N, C, h*w)``: a patch grid becoming tokens (a ViT's patch embedding)."""
        values = [self.env[n] for n in inputs]
        if (state.axes != (-2, -1) or len(values) != 1 or not isinstance(values[0], torch.Tensor)
                or not isinstance(result, torch.Tensor) or values[0].dim() != 4 or result.dim() != 3):
            return None
        n, c, h, w = values[0].shape
        if tuple(result.shape) != (n, c, h * w):
            return None
        return _Tokens(state, -1, h * w)

    def _token_op(self, node: fx.Node, state: "_Tokens", result: Any, inputs: list) -> Any:
        """An op on tokens: per token when it keeps them all, extra tokens when it prepends some.

        Anything else that changes the token axis (selecting the class token,
        a reshape back to a grid, a hand-written attention's products) is
        taken as global: never smaller than what a unit can see.
        """
        if not isinstance(result, torch.Tensor):
            return _GLOBAL
        ndim = result.dim()
        in_dims = {self.env[n].dim() for n in inputs if isinstance(self.states[n], _Tokens)}
        if in_dims != {ndim} or -state.axis > ndim:
            return _GLOBAL
        if result.shape[state.axis] == state.count:
            return state
        if node.target is torch.cat:
            parts = node.args[0] if node.args else node.kwargs.get("tensors")
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            if (isinstance(parts, (list, tuple)) and isinstance(dim, int) and dim % ndim == state.axis % ndim
                    and isinstance(parts[-1], fx.Node) and isinstance(self.states.get(parts[-1]), _Tokens)
                    and all(self.states.get(p) is None for p in parts[:-1] if isinstance(p, fx.Node))):
                added = int(result.shape[state.axis]) - state.count
                return _Tokens(state.window, state.axis, state.count + added, state.extra + added)
            return _Unknown("tokens joined after the patches")
        return _GLOBAL


def input_channels(model: nn.Module) -> int:
    """Channels of the first convolution's input (3 when there is none): the dummy input's."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return 3


def _default_input_size(model: nn.Module) -> int | tuple[int, int]:
    info = getattr(model, "unitscope_info", None)
    size = getattr(getattr(info, "preprocessing", None), "input_size", None)
    if isinstance(size, tuple):
        return size
    return int(size) if size and size != "native" else 224  # native: any size shows the structure


def _propagate(model: nn.Module, input_size: int | tuple[int, int] | None) -> dict[str, Any]:
    """Module name -> propagation state, from one traced dummy forward pass."""
    tracer = _ModuleOutputTracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # fx raises many types; the reason is in the message
        raise ValueError(
            f"cannot trace {type(model).__name__} with torch.fx to compute its receptive fields "
            f"(data-dependent control flow?): {exc}"
        ) from exc
    gm = fx.GraphModule(tracer.root, graph)
    if input_size is None:
        input_size = _default_input_size(model)
    height, width = _pair(input_size)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    dummy = torch.zeros(1, input_channels(model), height, width, device=device, dtype=dtype)
    propagator = _Propagator(gm)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            propagator.run(dummy)
    except Exception as exc:
        raise ValueError(
            f"a forward pass of {type(model).__name__} on a {height}x{width} input failed while "
            f"computing receptive fields (pass input_size= the network accepts): {exc}"
        ) from exc
    finally:
        model.train(was_training)
    # The tracer's proxies belong to the traced graph; map them to node states.
    by_name = {node.name: state for node, state in propagator.states.items()}
    out: dict[str, Any] = {}
    for name, value in tracer.module_outputs.items():
        nodes = _nodes_of(value)
        out[name] = _union([by_name.get(n.name) for n in nodes]) if nodes else None
    return out
