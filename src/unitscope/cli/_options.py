"""The options many commands share, declared once, and what a command does with their values.

``@shared("model", "data", "out", ..., out="Writes OUT/NAME/rf/<layer>/.")``
adds those options to a command (after its own, the preprocessing ones
last) and hands their values to it as one :class:`Shared` argument; a
keyword gives an option its own help text (a string) or default.  Groups:
``data`` brings ``--layout`` and ``--classes``, ``resume`` brings
``--checkpoint-every`` and ``--restart``, ``dissected`` brings
``--dissection`` and ``--layer``, ``preprocessing`` the seven
preprocessing options.
"""

from __future__ import annotations

import functools
import inspect
import typing
from pathlib import Path
from typing import Optional

import typer

from unitscope.study import checks
from unitscope.study.inputs import PREPROCESSING_OPTIONS, Inputs
from unitscope.study.progress import tqdm_bars

__all__ = ["MODEL_HELP", "SEED_HELP", "checked", "shared", "Shared"]

MODEL_HELP = ("Architecture name (`unitscope models`), path/to/file.py:factory, package.module:factory, "
              "or a torch.export archive (.pt2).")
#: The one help text of every ``--seed`` that seeds a network's random weights.
SEED_HELP = "Seed of the random weights (without --weights): the same seed gives the same network."


def checked(check):
    """A typer callback running a :mod:`unitscope.study.checks` check: its ValueError names the option."""
    def callback(value):
        try:
            return check(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return callback


#: name -> (type, default, flags, other typer.Option arguments); help is the last of them
_DECLARED = {
    "model": (str, ..., ("--model",), dict(help=MODEL_HELP)),
    "data": (Path, ..., ("--data",), dict(help="Plain pool (ImageFolder) or annotated pool.")),
    "layout": (str, "auto", ("--layout",), dict(help="How --data is laid out: auto, broden, camvid, ade20k, voc, cityscapes, index or plain (README: pool layouts).")),
    "classes": (Optional[Path], None, ("--classes",), dict(help="Class file of an index-mask pool: CSV value,name[,category][,color], or ADE20K's objectInfo150.csv.")),
    "out": (Path, ..., ("--out",), dict(help="Results directory.")),
    "weights": (Optional[Path], None, ("--weights",), dict(help="Checkpoint file (random weights without it).")),
    "name": (Optional[str], None, ("--name",), dict(callback=checked(checks.name_option), help="Folder under --out (default MODEL).")),
    "layers": (Optional[str], None, ("--layers",), dict(callback=checked(checks.layer_list), help="Comma-separated spatial layers (default: the model's).")),
    "batch_size": (int, 32, ("--batch-size",), dict(min=1)),
    "device": (str, "cpu", ("--device",), dict(callback=checked(checks.device_option), help="cpu, cuda, cuda:1 ...")),
    "checkpoint_every": (int, 20, ("--checkpoint-every",), dict(min=1, help="Batches between checkpoints.")),
    "restart": (bool, False, ("--restart",), dict(help="Discard a partial run instead of resuming it.")),
    "seed": (int, 0, ("--seed",), dict(min=0, help=SEED_HELP)),
    "label_category": (Optional[str], None, ("--label-category",), dict(help="Annotated pool: category giving the class (e.g. scene).")),
    "dissection": (Path, ..., ("--dissection",), dict(help="A dissection result folder (OUT/NAME/dissect).")),
    "layer": (str, ..., ("--layer",), dict(help="A dissected spatial layer.")),
    "preprocess": (Optional[str], None, ("--preprocess",), dict(help="Preprocessing preset: imagenet, inception or caffe (default: the checkpoint's, else the architecture's).")),
    "mean": (Optional[str], None, ("--mean",), dict(help="Normalisation mean: 3 comma-separated numbers (in the input's channel order and scale) or one for all channels.")),
    "std": (Optional[str], None, ("--std",), dict(help="Normalisation std: 3 comma-separated positive numbers or one for all.")),
    "input_size": (Optional[str], None, ("--input-size",), dict(help="Input size: N (square), H,W, or native (no resize; batch size 1).")),
    "resize": (Optional[str], None, ("--resize",), dict(help="stretch, shorter-side+center-crop or pad (default: centre crop for plain pools, stretch for annotated pools; masks are cropped/padded alike).")),
    "channel_order": (Optional[str], None, ("--channel-order",), dict(help="rgb or bgr.")),
    "scale": (Optional[str], None, ("--scale",), dict(help="Pixel range before normalisation: 1 ([0, 1]) or 255 ([0, 255]).")),
}
_GROUPS = {"data": ("data", "layout", "classes"), "resume": ("checkpoint_every", "restart"),
           "dissected": ("dissection", "layer"), "preprocessing": PREPROCESSING_OPTIONS}


def option(name: str, override=None):
    """``(type, typer.Option)`` of shared option ``name``; ``override``: its help (a string) or default."""
    kind, default, flags, extra = _DECLARED[name]
    if isinstance(override, str):
        extra = dict(extra, help=override)
    elif override is not None:
        default = override
    return kind, typer.Option(default, *flags, **extra)


class Shared(Inputs):
    """The values of a command's shared options; opens its network and pool as :class:`~unitscope.study.Inputs`."""

    def record(self, command: str):
        """The command's ``run.json``, with every option as parsed."""
        from unitscope.cli._common import get_current_context
        from unitscope.study import RunRecord

        return RunRecord(command, dict(get_current_context().params))


def shared(*names: str, **overrides):
    """Give the command the shared options ``names`` (groups expanded) as its first argument, a :class:`Shared`."""
    names = [n for name in names for n in _GROUPS.get(name, (name,))]

    def decorate(func):
        hints = typing.get_type_hints(func)
        own = [p.replace(annotation=hints.get(p.name, p.annotation), kind=inspect.Parameter.KEYWORD_ONLY)
               for p in list(inspect.signature(func).parameters.values())[1:]]
        added = {n: option(n, overrides.get(n)) for n in names}
        params = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=o, annotation=k)
                  for n, (k, o) in added.items()]
        last = [p for p in params if p.name in _GROUPS["preprocessing"]]
        params = [p for p in params if p not in last] + own + last

        @functools.wraps(func)
        def command(**values):
            return func(Shared(progress=tqdm_bars(unit="mask"), **{n: values.pop(n) for n in names}), **values)

        command.__signature__ = inspect.Signature(params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate
