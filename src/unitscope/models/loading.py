"""Any network: a registry name, your own factory function, or an exported archive.

:func:`load_model` reads what ``unitscope --model`` takes:

- a registry name (``alexnet``; see :func:`~unitscope.models.list_models`);
- ``path/to/file.py:factory`` -- the file is run as a module and
  ``factory()`` must return an ``nn.Module``.  This runs your own code, on
  purpose; unitscope never imports code from a data folder by itself;
- ``package.module:factory`` -- the same with an importable module;
- ``file.pt2`` -- a ``torch.export`` archive (``torch.export.save``), read
  with its module hierarchy restored (``torch.export.unflatten``) so that
  layers keep their dotted names and can be traced.  An archive exported
  with a fixed batch size runs only at that batch size (export with
  ``dynamic_shapes`` for the batch dimension).

TorchScript archives (``torch.jit.save``) are refused: torch does not run
forward hooks on script modules ("register_forward_hook is not supported on
ScriptModules"), and reading a layer's output is what every experiment does.

Weights (``weights=``) load into factory-made models as into registry ones
(any layout :func:`~unitscope.models.checkpoint.read_checkpoint` reads:
nested under ``state_dict``/``model``/``net``, ``module.`` prefixes); the
``unitscope`` section of a checkpoint (its preprocessing, class names)
applies too.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from unitscope.models.checkpoint import load_state_dict, read_checkpoint
from unitscope.models.info import ModelInfo, attach_info, model_info
from unitscope.models.preprocessing import FIELDS, Preprocessing, resolve_preprocessing
from unitscope.models.registry import _generic_names, create_model, list_models

__all__ = ["load_model", "model_kind", "reinitialised"]

_FACTORY = re.compile(r"^(?P<target>.+):(?P<attr>[A-Za-z_][A-Za-z0-9_.]*)$")


def model_kind(spec: str) -> str:
    """``"registry"``, ``"file"`` (a .py factory), ``"module"`` (module:factory), ``"export"`` or ``"torchscript"``."""
    spec = str(spec)
    if spec in list_models():  # a registry name wins over a file of the same name
        return "registry"
    match = _FACTORY.match(spec)
    if match:
        return "file" if match.group("target").endswith(".py") else "module"
    if spec.endswith(".pt2"):
        return "export"
    if Path(spec).is_file() or spec.endswith((".pt", ".pth", ".ts", ".jit", ".zip")):
        return "torchscript"
    return "registry"


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (errors are one line), shortened to ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _import_file(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"--model: no such Python file: {path}")
    # A stable module name per file, so pickled references and repeated loads agree.
    name = "unitscope_user_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ValueError(f"--model: running {path} failed: {type(exc).__name__}: {_one_line(exc)}") from exc
    return module


def _import_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise LookupError(f"--model: no module named {exc.name!r} (for {name}:...); give an importable "
                          "module or a path/to/file.py") from exc
    except Exception as exc:
        raise ValueError(f"--model: importing {name} failed: {type(exc).__name__}: {_one_line(exc)}") from exc


def _from_factory(spec: str, kind: str) -> nn.Module:
    match = _FACTORY.match(spec)
    target, attr = match.group("target"), match.group("attr")
    module = _import_file(Path(target)) if kind == "file" else _import_module(target)
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            found = sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))
            raise LookupError(f"--model: {target} has no attribute {attr!r} (callables there: "
                              f"{', '.join(found[:10]) or 'none'})")
        factory = getattr(factory, part)
    if isinstance(factory, nn.Module):
        model = factory
    elif callable(factory):
        try:
            model = factory()
        except Exception as exc:
            raise ValueError(f"--model: the factory {spec} raised {type(exc).__name__}: {_one_line(exc)}") from exc
    else:
        raise ValueError(f"--model: {spec} is a {type(factory).__name__}, not a function returning an nn.Module")
    if not isinstance(model, nn.Module):
        raise ValueError(f"--model: the factory {spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _from_export(path: Path) -> nn.Module:
    import torch

    if not path.is_file():
        raise FileNotFoundError(f"--model: no such torch.export archive: {path}")
    try:
        program = torch.export.load(path)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"--model: cannot read {path} as a torch.export archive "
                         f"({type(exc).__name__}: {first})") from exc
    return torch.export.unflatten(program)


def _refuse_torchscript(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"--model: no such file: {path}")
    is_script = False
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            is_script = any("/code/" in n for n in archive.namelist())
    what = "a TorchScript archive" if is_script else "a file that is not a model archive"
    raise ValueError(
        f"--model: {path} is {what}; unitscope reads layers with forward hooks, which torch does not run "
        "on TorchScript modules: give a registry name with --weights for a state_dict, a .py file:factory, "
        "or a torch.export archive (.pt2)")


def load_model(spec: str | None, *, weights: str | os.PathLike | None = None, num_classes: int | None = None,
               preprocessing: Preprocessing | Mapping[str, Any] | None = None,
               allow_pickle: bool = False, seed: int | None = None) -> nn.Module:
    """Build the network named by ``spec`` (see the module docstring), in eval mode.

    Parameters
    ----------
    spec : str or None
        Registry name, ``file.py:factory``, ``package.module:factory`` or
        ``archive.pt2``; None takes the architecture recorded in the
        checkpoint (files written by ``save_checkpoint``).
    weights : path, keyword-only
        Checkpoint to load into the model (not for ``.pt2`` archives, which
        hold their weights).
    num_classes : int, keyword-only
        For registry models only (a factory decides its own).
    preprocessing : Preprocessing or dict, keyword-only
        A :class:`Preprocessing` replaces the model's own (sources
        ``"argument"``); a dict of
        :func:`~unitscope.models.preprocessing.resolve_preprocessing`
        keywords (``preset_name``, ``mean``, ``std``, ``input_size``,
        ``resize``, ``channel_order``, ``scale``) overrides it value by
        value (sources ``"option"``).  Default: the model's own.
    allow_pickle : bool, keyword-only
        See :func:`~unitscope.models.checkpoint.read_checkpoint`.
    seed : int, keyword-only
        Seed of the random initialisation (registry models, and the
        factory's call), so that a network without ``weights`` is the same
        network every run; recorded as ``model_info(model).seed``.  None:
        torch's global generator.

    Returns
    -------
    nn.Module
        With ``model.unitscope_info``; its preprocessing comes from the
        checkpoint's ``unitscope`` section, else the model's own info (a
        factory may attach one), else the defaults (sources ``"default"``).

    Raises
    ------
    FileNotFoundError
        A missing ``.py`` file, archive or checkpoint.
    LookupError
        An unknown registry name, module or factory attribute.
    ValueError
        A factory that raises or returns something other than an
        ``nn.Module``; a TorchScript archive; weights that do not fit.
    """
    model = _load(spec, weights=weights, num_classes=num_classes, allow_pickle=allow_pickle, seed=seed)
    if preprocessing is not None:
        info = model_info(model)
        if isinstance(preprocessing, Preprocessing):
            info.preprocessing = replace(preprocessing, sources={k: "argument" for k in FIELDS})
        else:
            info.preprocessing = resolve_preprocessing(info.preprocessing, **preprocessing)
        attach_info(model, info)
    return model


def _load(spec: str | None, *, weights, num_classes, allow_pickle, seed) -> nn.Module:
    if spec is None:  # a checkpoint written by save_checkpoint names its architecture
        return create_model(None, weights=weights, num_classes=num_classes, allow_pickle=allow_pickle, seed=seed)
    spec = str(spec)
    kind = model_kind(spec)
    if kind == "registry":
        return create_model(spec, weights=weights, num_classes=num_classes, allow_pickle=allow_pickle, seed=seed)
    if kind == "torchscript":
        _refuse_torchscript(Path(spec))
    if kind == "export":
        if weights is not None:
            raise ValueError(f"--weights: {spec} is a torch.export archive that holds its own weights")
        model = _from_export(Path(spec))
    else:
        with torch.random.fork_rng(devices=[]):  # a seeded factory call leaves the caller's generator alone
            if seed is not None:
                torch.manual_seed(seed)
            model = _from_factory(spec, kind)
    metadata: dict = {}
    if weights is not None:
        state_dict, metadata = read_checkpoint(weights, allow_pickle=allow_pickle)
        load_state_dict(model, state_dict, source=f"checkpoint {weights}")
    own = getattr(model, "unitscope_info", None)
    info = own if isinstance(own, ModelInfo) else model_info(model)
    pre = info.preprocessing
    if not isinstance(own, ModelInfo):
        pre = Preprocessing(**{k: getattr(pre, k) for k in FIELDS}, sources={k: "default" for k in FIELDS})
    saved = metadata.get("preprocessing") or {}
    if saved:
        from_checkpoint = Preprocessing.from_dict(saved, source="checkpoint")
        values = {k: getattr(from_checkpoint if saved.get(k) is not None else pre, k) for k in FIELDS}
        sources = {k: "checkpoint" if saved.get(k) is not None else pre.sources.get(k, "default") for k in FIELDS}
        pre = Preprocessing(**values, sources=sources)
    names = list(metadata.get("class_names") or info.class_names)
    attach_info(model, ModelInfo(
        arch=spec, preprocessing=pre, class_names=names or _class_names_from_output(model),
        default_layers=list(metadata.get("default_layers") or info.default_layers),
        weights=os.fspath(weights) if weights is not None else ("archive" if kind == "export" else "factory"),
        seed=seed if weights is None and kind != "export" else None))
    return model.eval()


def _class_names_from_output(model: nn.Module) -> list[str]:
    """``class_0 ...`` for the last linear/conv layer's outputs, when it has a plain count."""
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module.out_features
        elif isinstance(module, nn.Conv2d):
            last = module.out_channels
    return _generic_names(last) if last else []


def reinitialised(model: nn.Module) -> nn.Module:
    """``model`` with every parameter drawn again by its module's ``reset_parameters()`` (a random-weights null).

    A factory may load trained weights itself, so "the factory's model
    without ``--weights``" is no null; this one is, whatever the factory does.
    Draws from torch's global generator (seed it first).

    Raises
    ------
    ValueError
        If a parameter belongs to a module that cannot reset it (a
        ``torch.export`` archive's modules, custom layers without
        ``reset_parameters``): such a model has no honest random twin here.
    """
    covered: set[int] = set()
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
            covered.update(id(p) for p in module.parameters(recurse=False))
    left = [name for name, p in model.named_parameters() if id(p) not in covered]
    if left:
        shown = ", ".join(left[:5]) + (f", ... ({len(left) - 5} more)" if len(left) > 5 else "")
        raise ValueError(f"--null: cannot draw random weights for {len(left)} parameter(s) of this model "
                         f"({shown}): their modules have no reset_parameters()")
    return model
