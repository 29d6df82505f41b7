"""Layer tracing: read (or stop at) any layer of a network by its dotted name."""

from unitscope.hooks.trace import StopForward, Trace, TraceDict, layer_names, resolve_layer

__all__ = ["StopForward", "Trace", "TraceDict", "layer_names", "resolve_layer"]
