"""The report's figures: matplotlib, written as PNG files.

Each function takes plain tables (pandas frames read from the results) and
an output path, draws one figure with a title, axis labels and a legend,
writes it, and returns the path (None when there is nothing to draw).
Figures are made with :class:`matplotlib.figure.Figure` and the Agg canvas
directly, never through ``pyplot``: no global backend switch, no figure
left open, safe in any process.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from unitscope.taxonomy import TYPE_NAMES, TYPES

__all__ = [
    "TYPE_COLORS",
    "plot_type_shares",
    "plot_detector_counts",
    "plot_preference",
    "plot_receptive_fields",
    "plot_census_objects",
    "plot_census_correlations",
    "plot_census_scatter",
    "plot_census_null",
    "plot_census_sweep",
    "plot_human_types",
    "plot_localization",
    "plot_ablation",
    "plot_grouped_bars",
]

#: Colours of the six unit types (colour-blind-safe Okabe-Ito palette).
TYPE_COLORS = {
    "simple": "#E69F00",
    "texture": "#56B4E9",
    "region": "#009E73",
    "part": "#F0E442",
    "object": "#D55E00",
    "scene": "#CC79A7",
}
_PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
DPI = 100


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def _wrap(text: str, width_inches: float, *, fontsize: float = 12.0) -> str:
    """Wrap a title to the figure's width (about 6.5 characters per inch at 12 pt)."""
    return textwrap.fill(text, max(20, int(width_inches * 78 / fontsize)))


def _color(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _panels(fig: Figure, n: int, *, sharey: bool = True):
    axes = fig.subplots(1, n, sharey=sharey, squeeze=False)[0]
    return list(axes)


def _layer_ticks(ax, layers: Sequence[str]) -> None:
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers, rotation=45 if max((len(s) for s in layers), default=0) > 6 else 0,
                       ha="right" if max((len(s) for s in layers), default=0) > 6 else "center")


# --------------------------------------------------------------------------- unit semantics
def plot_type_shares(layers: dict[str, pd.DataFrame], path: Path, *, title: str | None = None,
                     ylabel: str = "units that are detectors (%)") -> Path | None:
    """Stacked bars: per layer, the share of all units that detect each type (one panel per network).

    ``layers`` maps network -> its ``layers.csv`` frame (``layer`` and
    ``share_<type>`` columns, shares of all units of the layer).
    """
    layers = {k: v for k, v in layers.items() if v is not None and len(v)}
    if not layers:
        return None
    fig = _figure(max(6.0, 3.6 * len(layers) + 2.2), 3.8)
    axes = _panels(fig, len(layers))
    for ax, (network, frame) in zip(axes, layers.items()):
        names = list(frame["layer"])
        bottom = np.zeros(len(frame))
        for t in TYPES:
            column = f"share_{t}"
            values = (pd.to_numeric(frame[column], errors="coerce").fillna(0).to_numpy() * 100
                      if column in frame else np.zeros(len(frame)))
            ax.bar(range(len(names)), values, bottom=bottom, color=TYPE_COLORS[t], label=TYPE_NAMES[t],
                   edgecolor="white", linewidth=0.5)
            bottom += values
        _layer_ticks(ax, names)
        ax.set_title(network)
        ax.set_xlabel("layer")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="outside right center", title="unit type", fontsize=8)
    fig.suptitle(_wrap(title or "What the units detect, per layer (share of units of each type)", fig.get_figwidth()))
    return _save(fig, path)


def plot_grouped_bars(table: pd.DataFrame, columns: Sequence[tuple[str, str]], path: Path, *, title: str,
                      ylabel: str, networks: Sequence[str] | None = None,
                      layers: Sequence[str] | None = None, xlabel: str = "layer",
                      legend_title: str = "network") -> Path | None:
    """One panel per ``(column, panel title)``: bars per layer, one bar per network side by side.

    ``table`` has ``network`` and ``layer`` columns (the groups and the
    positions on the x axis) and the plotted ``columns``.
    """
    if table is None or not len(table):
        return None
    networks = list(networks or dict.fromkeys(table["network"]))
    layers = list(layers or dict.fromkeys(table["layer"]))
    bars = len(layers) * max(len(networks), 1) * len(columns)
    fig = _figure(min(16.0, max(5.0, 4.2 * len(columns), 0.22 * bars + 2.0)), 3.6)
    axes = _panels(fig, len(columns), sharey=False)
    width = 0.8 / max(len(networks), 1)
    for ax, (column, panel_title) in zip(axes, columns):
        counts = True
        for i, network in enumerate(networks):
            rows = table[table["network"] == network].set_index("layer")
            values = [float(rows.loc[layer, column]) if layer in rows.index else 0.0 for layer in layers]
            values = np.nan_to_num(np.asarray(values, dtype=float))
            counts = counts and bool(np.allclose(values, np.round(values)))
            x = np.arange(len(layers)) - 0.4 + width * (i + 0.5)
            ax.bar(x, values, width=width, color=_color(i), label=network)
        if counts:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        _layer_ticks(ax, layers)
        ax.set_title(_wrap(panel_title, fig.get_figwidth() / len(columns), fontsize=10), fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(title=legend_title, fontsize=8)
    fig.suptitle(_wrap(title, fig.get_figwidth()))
    return _save(fig, path)


def plot_detector_counts(table: pd.DataFrame, path: Path, *, networks: Sequence[str] | None = None,
                         layers: Sequence[str] | None = None) -> Path | None:
    """Detectors, object detectors and unique concepts per layer, networks side by side."""
    return plot_grouped_bars(
        table, [("detectors", "detector units"), ("object_detectors", "object detector units"),
                ("unique_concepts", "unique concepts detected")],
        path, title="Detectors per layer", ylabel="count", networks=networks, layers=layers)


# --------------------------------------------------------------------------- preference
def plot_preference(fractions: pd.DataFrame, path: Path, *, networks: Sequence[str] | None = None,
                    sources: Sequence[str] | None = None, top: int | None = None) -> Path | None:
    """Stacked bars per layer of the sources of its top images (one panel per network)."""
    if fractions is None or not len(fractions):
        return None
    networks = [n for n in (networks or dict.fromkeys(fractions["network"])) if (fractions["network"] == n).any()]
    sources = list(sources or dict.fromkeys(fractions["source"]))
    fig = _figure(max(5.5, 3.8 * len(networks)), 3.6)
    axes = _panels(fig, len(networks))
    for ax, network in zip(axes, networks):
        f = fractions[fractions["network"] == network]
        layers = list(dict.fromkeys(f["layer"]))
        bottom = np.zeros(len(layers))
        for i, source in enumerate(sources):
            rows = f[f["source"] == source].set_index("layer")
            values = np.array([float(rows.loc[layer, "fraction"]) * 100 if layer in rows.index else 0.0
                               for layer in layers])
            ax.bar(range(len(layers)), values, bottom=bottom, color=_color(i), label=source,
                   edgecolor="white", linewidth=0.5)
            bottom += values
        ax.axhline(50, color="black", linewidth=0.8, linestyle=":")
        _layer_ticks(ax, layers)
        ax.set_ylim(0, 100)
        ax.set_title(network)
        ax.set_xlabel("layer")
    axes[0].set_ylabel(f"share of the top-{top} images (%)" if top else "share of the top images (%)")
    axes[-1].legend(title="image source", fontsize=8, loc="lower right")
    fig.suptitle(_wrap("Which images each layer prefers (sources of its top images)", fig.get_figwidth()))
    return _save(fig, path)


# --------------------------------------------------------------------------- receptive fields
def plot_receptive_fields(rf_layers: dict[str, pd.DataFrame], paper: pd.DataFrame, path: Path) -> Path | None:
    """Theoretical vs empirical RF size per layer: this run's networks (left), the paper's Table 1 (right).

    ``rf_layers`` maps network -> frame with ``layer, rf_mean, rf_std, theoretical_size``.
    """
    rf_layers = {k: v for k, v in rf_layers.items() if v is not None and len(v)}
    if not rf_layers:
        return None
    fig = _figure(10.0, 3.9)
    left, right = _panels(fig, 2, sharey=False)
    order: list[str] = []
    for frame in rf_layers.values():
        order += [layer for layer in frame["layer"] if layer not in order]
    offsets = np.linspace(-0.12, 0.12, len(rf_layers)) if len(rf_layers) > 1 else [0.0]
    theoretical = {}
    for frame in rf_layers.values():
        if "theoretical_size" in frame:
            theoretical[tuple(zip(frame["layer"], frame["theoretical_size"]))] = frame
    shared = len(theoretical) == 1 and all("theoretical_size" in f for f in rf_layers.values())
    for i, (network, frame) in enumerate(rf_layers.items()):
        x = np.array([order.index(layer) for layer in frame["layer"]], dtype=float)
        left.errorbar(x + offsets[i], frame["rf_mean"], yerr=frame.get("rf_std"), fmt="o-", color=_color(i),
                      capsize=3, label=f"{network}: empirical (mean ± std)")
        if "theoretical_size" in frame and not shared:
            left.plot(x, frame["theoretical_size"], "s--", color=_color(i), alpha=0.55, markerfacecolor="none",
                      label=f"{network}: theoretical")
    if shared:
        frame = next(iter(theoretical.values()))
        x = np.array([order.index(layer) for layer in frame["layer"]], dtype=float)
        left.plot(x, frame["theoretical_size"], "s--", color="#555555", markerfacecolor="none",
                  label="theoretical (same architecture)")
    _layer_ticks(left, order)
    left.set_title("This run")
    left.set_xlabel("layer")
    left.set_ylabel("receptive field size (px)")
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    x = np.arange(len(paper))
    right.errorbar(x, paper["empirical_mean"], yerr=paper["empirical_std"], fmt="o-", color="#555555",
                   capsize=3, label="empirical (mean ± std)")
    right.plot(x, paper["theoretical"], "s--", color="#555555", markerfacecolor="none", label="theoretical")
    _layer_ticks(right, list(paper["layer"]))
    right.set_title("Paper, Places-CNN at 224 px (approximate)")
    right.set_xlabel("layer")
    right.set_ylabel("receptive field size (px)")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    fig.suptitle("Receptive fields: theoretical vs empirical")
    return _save(fig, path)


# --------------------------------------------------------------------------- census
def plot_census_objects(objects: pd.DataFrame, layer: str, path: Path, *, networks: Sequence[str],
                        limit: int = 40) -> Path | None:
    """Horizontal bars: detectors of each object at ``layer``, networks side by side."""
    if objects is None or not len(objects):
        return None
    f = objects[(objects["layer"] == layer) & objects["network"].isin(networks)]
    if not len(f) or f["detectors"].sum() == 0:
        return None
    pivot = f.pivot_table(index="object", columns="network", values="detectors", aggfunc="sum", fill_value=0)
    pivot = pivot[[n for n in networks if n in pivot.columns]]
    pivot = pivot[pivot.sum(axis=1) > 0]
    pivot = pivot.loc[pivot.sum(axis=1).sort_values(ascending=True, kind="stable").index[-limit:]]
    fig = _figure(7.5, max(2.8, 0.28 * len(pivot) + 1.4))
    ax = fig.subplots()
    height = 0.8 / max(len(pivot.columns), 1)
    y = np.arange(len(pivot))
    for i, network in enumerate(pivot.columns):
        ax.barh(y - 0.4 + height * (i + 0.5), pivot[network], height=height, color=_color(i), label=network)
    ax.set_yticks(y)
    ax.set_yticklabels(pivot.index)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of detector units")
    ax.set_ylabel("object")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(title="network", fontsize=8, loc="lower right")
    ax.set_title(_wrap(f"Object detectors per object class at {layer}", fig.get_figwidth()))
    return _save(fig, path)


_AGAINST = {"frequency": "object frequency (images containing it)",
            "informative_scenes": "scenes it is most informative for"}


def plot_census_correlations(correlations: pd.DataFrame, path: Path, *, networks: Sequence[str],
                             layers: Sequence[str], paper: dict[str, float]) -> Path | None:
    """Pearson and Spearman r per layer with 95% bootstrap intervals; one panel per variable."""
    if correlations is None or not len(correlations) or "pearson" not in correlations:
        return None
    shown = correlations[correlations["network"].isin(networks)]
    finite = np.isfinite(pd.to_numeric(shown["pearson"], errors="coerce"))
    against = [a for a in _AGAINST if (finite & (shown["against"] == a)).any()]
    if not against:
        return None
    fig = _figure(5.0 * len(against), 3.8)
    axes = _panels(fig, len(against))
    n = len(networks) * 2
    offsets = np.linspace(-0.3, 0.3, n) if n > 1 else [0.0]
    for ax, what in zip(axes, against):
        k = 0
        for i, network in enumerate(networks):
            rows = correlations[(correlations["network"] == network) & (correlations["against"] == what)]
            rows = rows.set_index("layer")
            for method, marker in (("pearson", "o"), ("spearman", "D")):
                x, y, lo, hi = [], [], [], []
                for j, layer in enumerate(layers):
                    if layer in rows.index and np.isfinite(rows.loc[layer, method]):
                        x.append(j + offsets[k])
                        y.append(rows.loc[layer, method])
                        lo.append(rows.loc[layer, method] - rows.loc[layer].get(f"{method}_lo", np.nan))
                        hi.append(rows.loc[layer].get(f"{method}_hi", np.nan) - rows.loc[layer, method])
                if x:
                    err = np.nan_to_num(np.array([lo, hi], dtype=float), nan=0.0).clip(min=0)
                    ax.errorbar(x, y, yerr=err, fmt=marker, color=_color(i), capsize=3,
                                markerfacecolor=_color(i) if method == "pearson" else "white",
                                label=f"{network}: {method}")
                k += 1
        if what in paper:
            ax.axhline(paper[what], color="black", linestyle="--", linewidth=0.9,
                       label=f"paper: {paper[what]:.2f}")
        ax.axhline(0, color="gray", linewidth=0.6)
        _layer_ticks(ax, list(layers))
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel("layer")
        ax.set_title(f"vs {_AGAINST[what]}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("correlation with detector count")
    fig.suptitle(_wrap("Detectors per object: correlations with 95% bootstrap intervals", fig.get_figwidth()))
    return _save(fig, path)


def plot_census_scatter(objects: pd.DataFrame, correlations: pd.DataFrame, network: str, layer: str,
                        path: Path) -> Path | None:
    """Scatter of detectors per object against frequency and against informative scenes, at ``layer``."""
    if objects is None or not len(objects):
        return None
    f = objects[(objects["network"] == network) & (objects["layer"] == layer)]
    against = [a for a in _AGAINST if a in f.columns and pd.to_numeric(f[a], errors="coerce").notna().any()]
    if not len(f) or not against:
        return None
    fig = _figure(4.6 * len(against), 3.6)
    axes = _panels(fig, len(against), sharey=True)
    for ax, what in zip(axes, against):
        x = pd.to_numeric(f[what], errors="coerce").to_numpy(dtype=float)
        y = f["detectors"].to_numpy(dtype=float)
        ax.scatter(x, y, s=24, color=_color(0), alpha=0.6, label="object class")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        for xi, yi, name in zip(x, y, f["object"]):
            if yi > 0:
                ax.annotate(str(name), (xi, yi), fontsize=6, xytext=(3, 2), textcoords="offset points")
        row = correlations[(correlations["network"] == network) & (correlations["layer"] == layer)
                           & (correlations["against"] == what)] if correlations is not None and len(correlations) \
            else pd.DataFrame()
        if len(row) and "pearson" in row:
            r = row.iloc[0]
            ax.set_title(f"r = {r['pearson']:.2f} [{r.get('pearson_lo', np.nan):.2f}, "
                         f"{r.get('pearson_hi', np.nan):.2f}], ρ = {r.get('spearman', np.nan):.2f}", fontsize=9)
        ax.set_xlabel(_AGAINST[what])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[0].set_ylabel("detector units")
    fig.suptitle(_wrap(f"{network}, {layer}: detectors per object", fig.get_figwidth()))
    return _save(fig, path)


def plot_census_null(layers: pd.DataFrame, network: str, null: str, path: Path) -> Path | None:
    """Object detectors and unique objects per layer: the trained network vs its random-weights null."""
    if layers is None or not len(layers) or "object_detectors" not in layers:
        return None
    f = layers[layers["network"].isin([network, null])]
    if not (f["network"] == null).any():
        return None
    order = list(dict.fromkeys(f.loc[f["network"] == network, "layer"]))
    return plot_grouped_bars(f, [("object_detectors", "object detector units"),
                                 ("unique_objects", "unique objects detected")],
                             path, title=f"{network} vs random weights ({null})", ylabel="count",
                             networks=[network, null], layers=order)


def plot_census_sweep(sweep: pd.DataFrame, path: Path, *, networks: Sequence[str]) -> Path | None:
    """Detectors per layer as the IoU threshold moves (solid: trained; dashed: random-weights null)."""
    if sweep is None or not len(sweep) or "iou_threshold" not in sweep:
        return None
    shown = [n for n in networks if (sweep["network"] == n).any()]
    if not shown:
        return None
    fig = _figure(max(6.0, 4.6 * len(shown)), 3.8)
    axes = _panels(fig, len(shown))
    for ax, network in zip(axes, shown):
        own = sweep[sweep["network"] == network]
        null = sweep[sweep["network"] == f"{network}-random"]
        for i, layer in enumerate(dict.fromkeys(own["layer"])):
            rows = own[own["layer"] == layer].sort_values("iou_threshold")
            ax.plot(rows["iou_threshold"], rows["detectors"], "o-", color=_color(i), markersize=3, label=layer)
            nrows = null[null["layer"] == layer].sort_values("iou_threshold")
            if len(nrows):
                ax.plot(nrows["iou_threshold"], nrows["detectors"], "--", color=_color(i), alpha=0.7,
                        label=f"{layer} (random)")
        ax.set_title(network)
        ax.set_xlabel("IoU threshold")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    axes[0].set_ylabel("detector units")
    axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(_wrap("Detectors vs the IoU threshold (dashed: random weights)", fig.get_figwidth()))
    return _save(fig, path)


# --------------------------------------------------------------------------- localisation
def plot_localization(objects: pd.DataFrame, network: str, path: Path, *, limit: int = 30) -> Path | None:
    """Per object, at the layer with the most localised objects: pointing-game hits, mask IoU, box hits.

    ``objects`` is ``localize/objects.csv`` (the combined detector of each
    object: ``layer, object, pointing, mask_iou, box_hit_rate``).
    """
    if objects is None or not len(objects) or not {"layer", "object", "pointing", "mask_iou"} <= set(objects):
        return None
    per_layer = objects.groupby("layer", sort=False)["object"].count()
    layer = per_layer.idxmax()
    f = objects[objects["layer"] == layer].sort_values(["pointing", "object"], ascending=[False, True],
                                                       kind="stable").head(limit)
    metrics = [("pointing", "pointing game (hit rate)"), ("mask_iou", "mask IoU"),
               ("box_hit_rate", "box IoU ≥ 0.5 (rate)")]
    metrics = [(m, label) for m, label in metrics if m in f]
    long = pd.concat([pd.DataFrame({"network": label, "layer": f["object"].astype(str),
                                    "value": pd.to_numeric(f[m], errors="coerce")}) for m, label in metrics])
    return plot_grouped_bars(long, [("value", f"{network}, {layer}: each object's detector units combined")],
                             path, title="Object localisation by object-detector units", ylabel="score (0-1)",
                             networks=[label for _, label in metrics], layers=list(f["object"].astype(str)),
                             xlabel="object", legend_title="score")


# --------------------------------------------------------------------------- ablation
def plot_ablation(targets: pd.DataFrame, path: Path, *, title: str, limit: int = 30) -> Path | None:
    """Accuracy drop of each object's target class: its detectors off vs as many random units off (± std).

    ``targets`` has ``object, class_name, drop, random_drop_mean`` and
    optionally ``random_drop_std`` (rows of ``ablate/classes.csv``).
    """
    if targets is None or not len(targets):
        return None
    f = targets.assign(_drop=pd.to_numeric(targets["drop"], errors="coerce"))
    f = f.sort_values(["_drop", "object"], ascending=[False, True], kind="stable").head(limit)
    labels = [f"{o} → {c}" for o, c in zip(f["object"], f["class_name"])]
    drop = f["_drop"].to_numpy(dtype=float) * 100
    random = pd.to_numeric(f["random_drop_mean"], errors="coerce").to_numpy(dtype=float) * 100
    std = (pd.to_numeric(f["random_drop_std"], errors="coerce").fillna(0).to_numpy(dtype=float) * 100
           if "random_drop_std" in f else np.zeros(len(f)))
    fig = _figure(max(5.5, 0.55 * len(f) + 2.5), 4.0)
    ax = fig.subplots()
    x = np.arange(len(f))
    ax.bar(x - 0.2, drop, width=0.4, color=_color(1), label="object's detectors switched off")
    ax.bar(x + 0.2, random, width=0.4, color=_color(0), yerr=std, capsize=3,
           label="as many random units switched off (mean ± std)")
    ax.axhline(0, color="gray", linewidth=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    ax.set_xlabel("object → scene class")
    ax.set_ylabel("accuracy drop (percentage points)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(_wrap(title, fig.get_figwidth()))
    return _save(fig, path)


# --------------------------------------------------------------------------- human labels
def plot_human_types(human_layers: dict[str, pd.DataFrame], path: Path) -> Path | None:
    """Stacked bars of the human types per layer (shares of the labelled units)."""
    frames = {k: v for k, v in human_layers.items() if v is not None and len(v)}
    if not frames:
        return None
    return plot_type_shares(frames, path, title="Human labels: unit types per layer",
                            ylabel="labelled units (%)")
