"""Commands of the paper's experiments: preference, minimal, rf, localize, ablate.

Each parses its options, opens the networks and pools, and calls one
function of :mod:`unitscope.study.experiments`, which runs the experiment
and saves its typed result under ``--out``.
"""

from __future__ import annotations

from typing import List, Optional

import typer

from unitscope.cli._common import log
from unitscope.cli._options import checked, shared
from unitscope.study import checks
from unitscope.study.progress import tqdm_bars

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command()
    @shared("out", "layers", "batch_size", "device", "resume", "seed", "preprocessing", out="Writes OUT/preference/.",
            layers="Comma-separated layers (default: each model's).")
    def preference(
        o,
        net: List[str] = typer.Option(..., "--net", callback=checked(checks.spec_list("NAME=ARCH[:WEIGHTS]")), help="NAME=ARCH[:WEIGHTS]; repeat for networks side by side (distinct names)."),
        pool: List[str] = typer.Option(..., "--pool", callback=checked(checks.spec_list("SOURCE=DIR")), help="SOURCE=DIR; repeat (e.g. objects=... scenes=...), one folder per source."),
        top: int = typer.Option(100, "--top", min=1, help="Top images kept per layer."),
    ) -> None:
        """Which images each layer prefers: the source mix of its top images (pre-experiment).

        Run it again with the same arguments after an interruption to resume.
        """
        from unitscope.study.experiments import preference_study

        record, models = o.record("preference"), o.networks(net, batch_size=o.batch_size)
        result = preference_study(models, o.layers_of(models), pool, out=o.out, progress=tqdm_bars(), record=record,
                                  top=top, batch_size=o.batch_size, checkpoint_every=o.checkpoint_every,
                                  restart=o.restart)
        typer.echo(result.to_frame().to_string(index=False))
        typer.echo(f"results in {o.out / 'preference'}")

    @app.command()
    @shared("model", "data", "out", "weights", "name", "batch_size", "device", "restart", "seed", "label_category",
            "preprocessing", batch_size=64, out="Writes OUT/NAME/minimal/.")
    def minimal(
        o,
        segmentation: str = typer.Option("slic", "--segmentation", callback=checked(checks.choice("slic", "masks")), help="slic (1a) or masks (1b, ground-truth objects)."),
        n_segments: int = typer.Option(50, "--segments", min=1, help="SLIC segments per image."),
        fill: str = typer.Option("mean", "--fill", callback=checked(checks.choice("mean", "blur", "gray")), help="mean, blur or gray."),
        max_images: Optional[int] = typer.Option(None, "--max-images", min=1, help="Stop after this many images (default: all)."),
        label_pattern: Optional[str] = typer.Option(None, "--label-pattern", callback=checked(checks.pattern_option), help="Plain pool: regex whose first group in a file name is the class index."),
        chunk: int = typer.Option(50, "--chunk", min=1, help="Images per saved chunk (the unit of resumption)."),
    ) -> None:
        """Minimal image representations: remove segments while the class stays correct (Exp. 1).

        Run it again with the same arguments after an interruption to resume.
        """
        from unitscope.study.experiments import minimal_study

        record, net = o.record("minimal"), o.network("minimal", batch_size=o.batch_size)
        options = {k: v for k, v in (("label_category", o.label_category), ("label_pattern", label_pattern)) if v}
        pool = o.pool(net, annotated=False, **options)
        minimal_study(net, pool, network=o.folder(), out=o.out, segmentation=segmentation, max_images=max_images,
                      chunk=chunk, restart=o.restart, progress=tqdm_bars(), record=record, log=log,
                      n_segments=n_segments, fill=fill, batch_size=o.batch_size)
        kind = "masks" if segmentation == "masks" else "superpixels"
        typer.echo(f"results in {o.out / o.folder() / 'minimal' / kind}")

    @app.command()
    @shared("model", "data", "out", "weights", "name", "layers", "batch_size", "device", "restart", "seed",
            "preprocessing", batch_size=64, out="Writes OUT/NAME/rf/<layer>/.")
    def rf(
        o,
        top_k: int = typer.Option(20, "--top-k", min=1, help="Top images per unit."),
        units: Optional[str] = typer.Option(None, "--units", callback=checked(checks.unit_list), help="Comma-separated unit indices (default all)."),
        max_images: Optional[int] = typer.Option(None, "--max-images", min=1, help="Use the first N images of the pool (default: all)."),
        mode: str = typer.Option("exact", "--mode", callback=checked(checks.choice("exact", "adaptive")), help="exact: every occluder position; adaptive: a coarse grid (every 4th position) first, then the paper's stride only in the cells where the coarse map is above --tolerance of the unit's peak and its interpolation error estimate (second differences of the coarse values) is too, and in the cells next to those; the rest is interpolated. Faster where maps are compact or smooth; its error is measured by benchmarks/rf_deep.py. Both modes recompute only what each occluder reaches where the network is a chain of convolutions, poolings and elementwise layers (the log says when not)."),
        tolerance: float = typer.Option(0.01, "--tolerance", callback=checked(checks.float_range(0, 1, high_open=True)), help="Adaptive mode: the interpolation error allowed, as a fraction of each unit's peak, in [0, 1) (default 0.01: 1%)."),
    ) -> None:
        """Empirical receptive fields by occlusion, beside the theoretical ones (Exp. 2).

        Run it again with the same arguments after an interruption to resume.
        """
        from unitscope.study.experiments import rf_study

        record, net = o.record("rf"), o.network("rf", native=False)
        summary = rf_study(net, o.chosen_layers(net), o.pool(net, annotated=False), network=o.folder(), out=o.out,
                           units=units, max_images=max_images, restart=o.restart, progress=tqdm_bars(), record=record,
                           log=log, top_k=top_k, batch_size=o.batch_size, mode=mode,
                           tolerance=tolerance)
        typer.echo(summary.to_string(index=False))

    def on_a_dissection(study: str, o, net_options: dict, pool_options: dict, **options) -> None:
        """Open the network and the pool, run ``study`` on the saved dissection ``--dissection``, save it."""
        from unitscope.study import experiments

        record, net = o.record(study), o.network(study, **net_options)
        pool = o.pool(net, annotated=True, **pool_options)
        getattr(experiments, f"{study}_study")(
            net, o.layer, pool, dissection=o.dissection, network=o.folder(), out=o.out, progress=tqdm_bars(),
            record=record, batch_size=o.batch_size, checkpoint_every=o.checkpoint_every, restart=o.restart, **options)
        typer.echo(f"results in {o.out / o.folder() / study}")

    common = ("model", "data", "out", "weights", "name", "batch_size", "device", "resume", "seed", "dissected",
              "preprocessing")

    @app.command()
    @shared(*common, "label_category", data="Annotated pool.", out="Writes OUT/NAME/localize/.")
    def localize(o) -> None:
        """Units as object localizers: masks, boxes and the pointing game (Exp. 5).

        Run it again with the same arguments after an interruption to resume.
        """
        pool_options = {"label_category": o.label_category} if o.label_category else {}
        on_a_dissection("localize", o, {"native": False}, pool_options)

    @app.command()
    @shared(*common, data="Annotated pool with class labels.", out="Writes OUT/NAME/ablate/.",
            seed="Seed of the random weights (without --weights) and of the random-unit draws.")
    def ablate(o, label_category: str = typer.Option("scene", "--label-category"),
               n_random: int = typer.Option(5, "--random", min=0, help="Random-unit draws per object.")) -> None:
        """Switch off the detectors of each object and measure each class's accuracy drop.

        Run it again with the same arguments after an interruption to resume.
        """
        on_a_dissection("ablate", o, {"batch_size": o.batch_size}, {"label_category": label_category},
                        n_random=n_random, seed=o.seed)
