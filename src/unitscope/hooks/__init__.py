"""Layer tracing: read (or stop at) any layer of a network by its dotted name; read its output as maps."""

from unitscope.hooks.spatial import (
    DEFAULT_EXTRA_TOKENS,
    SpatialLayout,
    check_spatial,
    extra_tokens_of,
    keep_units,
    spatial_layout,
    spatial_map,
)
from unitscope.hooks.trace import StopForward, Trace, TraceDict, layer_names, resolve_layer

__all__ = [
    "DEFAULT_EXTRA_TOKENS",
    "SpatialLayout",
    "StopForward",
    "Trace",
    "TraceDict",
    "check_spatial",
    "extra_tokens_of",
    "keep_units",
    "layer_names",
    "resolve_layer",
    "spatial_layout",
    "spatial_map",
]
