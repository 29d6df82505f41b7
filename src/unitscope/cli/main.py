"""``unitscope``: the command-line entry point.

Each command parses its arguments, calls one library function that returns
data, and prints a short summary.  Errors are one line (``--debug`` shows
the traceback).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from unitscope.cli._common import default_home, friendly_errors, split_list, tqdm_progress

app = typer.Typer(
    name="unitscope",
    help="Find out how objects are represented inside convolutional networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    ctx.obj = {"debug": debug}


@app.command()
@friendly_errors
def layers(
    model: str = typer.Argument(..., help="Architecture name (see `unitscope models`)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint file to load."),
    num_classes: Optional[int] = typer.Option(None, "--num-classes", help="Output classes (inferred from the checkpoint when given)."),
) -> None:
    """List a model's layers with channels, stride and theoretical receptive field."""
    from unitscope.models import create_model, layers_frame

    net = create_model(model, weights=weights, num_classes=num_classes)
    frame = layers_frame(net)
    typer.echo(frame.to_string(index=False))


@app.command("models")
@friendly_errors
def models_command() -> None:
    """List the architectures the registry knows."""
    from unitscope.models import list_models

    for name in list_models():
        typer.echo(name)


@app.command()
@friendly_errors
def world(
    out: Path = typer.Option(..., "--out", help="Directory to write the world into."),
    n_scenes: int = typer.Option(10, "--n-scenes", help="Scene classes."),
    n_objects: int = typer.Option(24, "--n-objects", help="Object classes."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same bytes)."),
    size: int = typer.Option(128, "--size", help="Image side in pixels."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing world."),
) -> None:
    """Generate the built-in synthetic world (scene- and object-centric datasets, Broden export)."""
    from unitscope.data.world import generate_world

    callback, bar = tqdm_progress("world", unit="img")
    try:
        paths = generate_world(out, n_scenes=n_scenes, n_objects=n_objects, seed=seed, size=size,
                               overwrite=overwrite, progress=callback)
    finally:
        bar.close()
    typer.echo(f"world written to {paths.root}")


@app.command()
@friendly_errors
def train(
    world_dir: Path = typer.Option(..., "--world", help="World directory made by `unitscope world`."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Cache directory for weights (default $UNITSCOPE_HOME/cache)."),
    task: str = typer.Option("both", "--task", help="scene, object or both."),
) -> None:
    """Train SceneNet (scenes) and ObjectNet (objects) on the world, cached by configuration."""
    from unitscope.training import train_network

    cache_dir = cache or default_home() / "cache"
    tasks = {"both": ["scene", "object"], "scene": ["scene"], "object": ["object"]}.get(task)
    if tasks is None:
        raise ValueError(f"--task must be scene, object or both, not {task!r}")
    for one in tasks:
        callback, bar = tqdm_progress(f"train {one}", unit="step")
        try:
            trained = train_network(world_dir, task=one, cache_dir=cache_dir, progress=callback)
        finally:
            bar.close()
        m = trained.metrics
        typer.echo(
            f"{trained.name}: top-1 {m['val_top1']:.1%} on held-out images, "
            f"trained in {m['train_seconds']:.0f} s{' (cached)' if m.get('cached') else ''} -> {trained.path}"
        )


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
