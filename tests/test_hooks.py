"""Layer tracing: values, copies, early stop, hook hygiene, name errors."""

from collections import OrderedDict

import pytest
import torch
from torch import nn

from toys import hook_count
from unitscope.hooks import Trace, TraceDict, layer_names, resolve_layer


def tiny_net():
    torch.manual_seed(1)
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 4, 3, padding=1),
            relu1=nn.ReLU(inplace=True),
            block=nn.Sequential(OrderedDict(conv2=nn.Conv2d(4, 5, 3), relu2=nn.ReLU(inplace=True))),
            pool=nn.AdaptiveAvgPool2d(1),
            flat=nn.Flatten(),
            fc=nn.Linear(5, 2),
        )
    )


def test_layer_names_are_dotted_named_modules():
    assert layer_names(tiny_net()) == [
        "conv1", "relu1", "block", "block.conv2", "block.relu2", "pool", "flat", "fc"
    ]


def test_trace_equals_manual_forward():
    net = tiny_net()
    x = torch.randn(2, 3, 8, 8)
    with Trace(net, "block.conv2") as t:
        out = net(x)
    manual = net.block.conv2(torch.relu(net.conv1(x)))
    torch.testing.assert_close(t.output, manual)
    assert out.shape == (2, 2)


def test_traced_output_survives_inplace_relu():
    net = tiny_net()
    x = torch.randn(2, 3, 8, 8)
    with Trace(net, "conv1") as t:
        net(x)
    expected = net.conv1(x)
    assert (expected < 0).any(), "test needs negative pre-activations"
    torch.testing.assert_close(t.output, expected)


def test_trace_dict_records_several_layers_and_stops_early():
    net = tiny_net()
    calls = []
    net.fc.register_forward_hook(lambda *a: calls.append("fc"))
    x = torch.randn(1, 3, 8, 8)
    with TraceDict(net, ["conv1", "block.relu2"], stop=True) as td:
        net(x)
    assert calls == [], "layers after the last traced one must not run"
    assert td["conv1"].output.shape == (1, 4, 8, 8)
    assert td["block.relu2"].output.shape == (1, 5, 6, 6)
    assert (td["block.relu2"].output >= 0).all()


def test_single_trace_stop_skips_rest():
    net = tiny_net()
    with Trace(net, "relu1", stop=True) as t:
        net(torch.randn(1, 3, 8, 8))
    assert t.output.shape == (1, 4, 8, 8)
    assert hook_count(net) == 0


def test_edit_changes_downstream():
    net = tiny_net()
    x = torch.randn(1, 3, 8, 8)
    with Trace(net, "block.relu2", edit=lambda out: out * 0):
        out = net(x)
    torch.testing.assert_close(out, net.fc.bias.detach().unsqueeze(0).expand(1, 2))


def test_no_hook_left_after_failing_forward():
    net = tiny_net()
    with pytest.raises(RuntimeError):
        with TraceDict(net, ["conv1", "fc"]):
            net(torch.randn(1, 7, 8, 8))  # wrong channel count fails inside conv1
    assert hook_count(net) == 0
    with pytest.raises(RuntimeError):
        with Trace(net, "fc"):
            net(torch.randn(1, 3, 2, 2))  # too small for conv2
    assert hook_count(net) == 0


def test_unknown_layer_lists_close_matches():
    net = tiny_net()
    with pytest.raises(LookupError, match=r"block\.conv2"):
        resolve_layer(net, "block.conv3")
    with pytest.raises(LookupError, match="no layer named 'conv9'"):
        Trace(net, "conv9")
    with pytest.raises(LookupError):
        TraceDict(net, ["conv1", "nope"])
    assert hook_count(net) == 0


def test_a_stopped_trace_dict_is_freed_at_once_without_the_garbage_collector():
    # A hook that held its TraceDict or its Trace made a cycle: each batch's traced outputs lived
    # until the collector's next full pass, and a dissection's memory grew by a batch per batch.
    import gc
    import weakref

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    gc.collect()
    gc.disable()
    try:
        with TraceDict(net, ["0", "1"], stop=True) as td:
            net(torch.rand(1, 3, 8, 8))
        assert td["1"].output.shape == (1, 4, 6, 6)
        traces = [weakref.ref(t) for t in td.values()]
        del td
        assert [ref() for ref in traces] == [None, None]
    finally:
        gc.enable()
