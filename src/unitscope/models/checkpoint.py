"""Reading and writing network weights.

Checkpoint files come in many shapes.  :func:`load_checkpoint` accepts

- a plain ``state_dict`` (``torch.save(model.state_dict(), path)``);
- a dict holding one under ``"state_dict"``, ``"model"`` or
  ``"model_state_dict"`` (training scripts, the Places365 releases);
- keys prefixed by ``module.`` anywhere in the path, as written by
  ``nn.DataParallel`` (the Places365 AlexNet wraps only ``features``, giving
  ``features.module.0.weight``);
- keys under a wrapper's attribute, ``model.`` / ``net.`` / ``network.``
  (PyTorch Lightning modules and training scripts that hold the network as
  ``self.model``);

and loads with ``strict=True``: a checkpoint that does not fit the network
is an error that lists the missing, unexpected and mis-shaped keys.

Files are read with ``torch.load(weights_only=True)``, which cannot run code
hidden in a pickle.  A file that stores whole Python objects (a pickled
``nn.Module``) is refused with an explanation unless ``allow_pickle=True``
is passed, which should be done only for files from a trusted source.

:func:`save_checkpoint` writes ``{"state_dict": ..., "unitscope": {...}}``,
where the ``unitscope`` section holds the model's :class:`ModelInfo` (arch,
number of classes, class names, preprocessing, default layers) and any
``extra`` values, so :func:`unitscope.models.create_model` can rebuild the
model from the file alone.  Any checkpoint may carry such a section, with
any subset of its keys; its ``preprocessing`` (``input_size``, ``mean``,
``std``, ``resize``, ``channel_order``, ``scale``; see
:mod:`unitscope.models.preprocessing`) is used unless the command line says
otherwise::

    torch.save({"state_dict": net.state_dict(),
                "unitscope": {"preprocessing": {"mean": [0.5] * 3, "std": [0.5] * 3}}}, path)
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unitscope._files import atomic_write
from unitscope.models.info import model_info

__all__ = ["read_checkpoint", "load_checkpoint", "save_checkpoint", "load_state_dict"]

_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")
_SHOWN = 5


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(isinstance(k, str) for k in value)
        and all(isinstance(v, torch.Tensor) for v in value.values())
    )


def _torch_load(path: Path, *, allow_pickle: bool) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if path.is_dir():
        raise ValueError(f"checkpoint path is a directory, not a file: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        message = str(exc)
        match = re.search(r"Unsupported global: GLOBAL (\S+)", message)
        if match and not allow_pickle:
            raise ValueError(
                f"checkpoint {path} stores pickled Python objects ({match.group(1)}), not just "
                "tensors; unitscope loads with weights_only=True so that a file cannot run code. "
                "If you trust the file, pass allow_pickle=True, or re-save its state_dict with "
                "torch.save(model.state_dict(), path)"
            ) from exc
        first_line = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
        raise ValueError(
            f"cannot read checkpoint {path}: the file is corrupt or not a PyTorch checkpoint "
            f"({type(exc).__name__}: {first_line[:200]})"
        ) from exc


def read_checkpoint(
    path: str | os.PathLike, *, allow_pickle: bool = False
) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint file into a state dict and its unitscope metadata.

    Parameters
    ----------
    path : str or path-like
    allow_pickle : bool, keyword-only
        Allow files that store pickled Python objects (``weights_only=False``).
        Only for files from a trusted source.

    Returns
    -------
    state_dict : dict of str to Tensor
        Keys as stored (``module.`` prefixes are *not* removed here, since
        whether they must go depends on the network; see
        :func:`load_state_dict`).
    metadata : dict
        The ``"unitscope"`` section written by :func:`save_checkpoint`
        (``arch``, ``num_classes``, ``class_names``, ``preprocessing``,
        ``default_layers``, ``extra``), empty for other files.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is corrupt, not a PyTorch checkpoint, holds no state
        dict, or needs pickled objects and ``allow_pickle`` is False.
    """
    path = Path(path)
    data = _torch_load(path, allow_pickle=allow_pickle)
    metadata: dict = {}
    # State dicts are returned as loaded (an OrderedDict keeps the
    # ``_metadata`` that versioned modules such as BatchNorm read).
    if isinstance(data, nn.Module):
        return data.state_dict(), metadata
    if _is_state_dict(data):
        return data, metadata
    if isinstance(data, Mapping):
        meta = data.get("unitscope")
        if isinstance(meta, Mapping):
            metadata = dict(meta)
        for key in _STATE_DICT_KEYS:
            value = data.get(key)
            if isinstance(value, nn.Module):
                return value.state_dict(), metadata
            if _is_state_dict(value):
                return value, metadata
        keys = ", ".join(repr(k) for k in list(data)[:10])
        raise ValueError(
            f"checkpoint {path} holds no state dict: expected a mapping of parameter names to "
            f"tensors, or a dict with one under {', '.join(map(repr, _STATE_DICT_KEYS))}; "
            f"found keys {keys}"
        )
    raise ValueError(
        f"checkpoint {path} holds a {type(data).__name__}, not a state dict"
    )


def _strip_module(key: str) -> str:
    parts = [p for p in key.split(".") if p != "module"]
    return ".".join(parts)


# DenseNet checkpoints written before torchvision 0.3 (the Places365
# densenet161 among them) name ``norm.1`` what is now ``norm1``.
_OLD_DENSENET = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\."
    r"(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def _renamed_densenet(key: str) -> str:
    match = _OLD_DENSENET.match(key)
    return match.group(1) + match.group(2) if match else key


#: Wrappers that put the network under an attribute (PyTorch Lightning's
#: ``self.model``, training scripts' ``self.net``): ``model.features.0.weight``.
_WRAPPER_PREFIXES = ("model.", "net.", "network.")


def _strip_wrapper(key: str) -> str:
    for prefix in _WRAPPER_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def plain_key(key: str) -> str:
    """A state-dict key without ``module.`` parts and a leading wrapper prefix (``model.``...)."""
    return _strip_wrapper(_strip_module(key))


_KEY_FIXES = (
    lambda k: _strip_module(k),
    lambda k: _renamed_densenet(_strip_module(k)),
    plain_key,
    lambda k: _renamed_densenet(plain_key(k)),
)


def _shown(keys: list[str]) -> str:
    text = ", ".join(keys[:_SHOWN])
    return text + (f", ... ({len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else "")


def load_state_dict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str = "state dict"
) -> nn.Module:
    """Load ``state_dict`` into ``model`` strictly, removing ``module.``/``model.`` prefixes when needed.

    Parameters
    ----------
    model : nn.Module
        Modified in place.
    state_dict : mapping of str to Tensor
        Not modified.
    source : str, keyword-only
        What to call the weights in error messages (a file name).

    Returns
    -------
    nn.Module
        ``model``.

    Raises
    ------
    ValueError
        If keys are missing, unexpected, or of the wrong shape; the message
        gives counts and the first few of each.
    """
    expected = model.state_dict()
    # DataParallel and wrapper prefixes (and old DenseNet names) are fixed only when
    # that makes the keys fit better: a network may have a sub-module "module" or "model".
    metadata = dict(getattr(state_dict, "_metadata", None) or {})
    best, best_fit = OrderedDict(state_dict), len(set(state_dict) & set(expected))
    best_metadata = metadata
    for fix in _KEY_FIXES:
        fixed = OrderedDict((fix(k), v) for k, v in state_dict.items())
        fit = len(set(fixed) & set(expected))
        if len(fixed) == len(state_dict) and fit > best_fit:
            best, best_fit = fixed, fit
            best_metadata = {fix(k + ".")[:-1] if k else k: v for k, v in metadata.items()}
    state_dict = best
    if best_metadata:
        state_dict._metadata = best_metadata

    def filled_by_torch(key: str) -> bool:
        # BatchNorm weights saved before torch 0.4.1 have no
        # num_batches_tracked; torch fills it in for unversioned state dicts.
        if key.rsplit(".", 1)[-1] != "num_batches_tracked":
            return False
        version = best_metadata.get(key.rsplit(".", 1)[0] if "." in key else "", {}).get("version")
        return version is None or version < 2

    missing = [k for k in expected if k not in state_dict and not filled_by_torch(k)]
    unexpected = [k for k in state_dict if k not in expected]
    mis_shaped = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state_dict.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mis_shaped:
        arch = getattr(getattr(model, "unitscope_info", None), "arch", None) or type(model).__name__
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys ({_shown(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys ({_shown(unexpected)})")
        if mis_shaped:
            problems.append(f"{len(mis_shaped)} keys of the wrong shape ({_shown(mis_shaped)})")
        raise ValueError(f"{source} does not fit {arch}: " + "; ".join(problems))
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{source} does not fit {type(model).__name__}: {exc}") from exc
    return model


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike, *, allow_pickle: bool = False
) -> dict:
    """Load the weights in the file ``path`` into ``model``.

    Parameters
    ----------
    model : nn.Module
        Modified in place.
    path : str or path-like
        A plain state dict, a dict holding one (``"state_dict"``,
        ``"model"``, ...), with or without ``module.`` prefixes.
    allow_pickle : bool, keyword-only
        See :func:`read_checkpoint`.

    Returns
    -------
    dict
        The file's unitscope metadata (empty for files not written by
        :func:`save_checkpoint`).

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is unreadable or corrupt, or its keys do not fit the
        model (the message lists missing and unexpected keys).

    Examples
    --------
    >>> net = torchvision.models.squeezenet1_0(weights=None)      # doctest: +SKIP
    >>> load_checkpoint(net, "squeezenet1_0_imagenet.pth")        # doctest: +SKIP
    {}
    """
    state_dict, metadata = read_checkpoint(path, allow_pickle=allow_pickle)
    load_state_dict(model, state_dict, source=f"checkpoint {path}")
    return metadata


def _check_plain(value: Any, where: str) -> None:
    """Refuse values that ``torch.load(weights_only=True)`` could not read back."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise ValueError(f"extra: key {key!r} at {where} must be a str or int")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise ValueError(
        f"extra: {where} is a {type(value).__name__}; only None, bool, int, float, str, tensors, "
        "lists, tuples and dicts can be stored (they load back without unpickling code)"
    )


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike, *, extra: dict | None = None
) -> Path:
    """Write ``model``'s weights and metadata to ``path``, atomically.

    The file holds ``{"state_dict": ..., "unitscope": {"arch", "num_classes",
    "class_names", "preprocessing", "default_layers", "format",
    "extra"}}``.  It is written to a temporary file in the same directory and
    moved into place with :func:`os.replace`, so a reader never sees half a
    file and an interrupted save leaves the old file intact.

    Parameters
    ----------
    model : nn.Module
        Not modified; its :class:`~unitscope.models.info.ModelInfo` (if any)
        supplies the metadata.
    path : str or path-like
        Parent directories are created.
    extra : dict, keyword-only
        More values to store under ``metadata["extra"]`` (accuracy,
        training configuration...).  Only plain values (None, bool, int,
        float, str, tensors, and lists/tuples/dicts of them).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If ``extra`` holds values that could not be loaded back safely.
    """
    path = Path(path)
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    info = model_info(model)
    state_dict = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    num_classes = len(info.class_names) if info.class_names else None
    metadata = {
        "format": 1,
        "arch": info.arch,
        "num_classes": num_classes,
        "class_names": list(info.class_names),
        "preprocessing": {k: v for k, v in info.preprocessing.to_dict().items()
                          if k not in ("preset", "sources") and v is not None},
        "default_layers": list(info.default_layers),
        "extra": extra,
    }
    # (atomic_write: a temporary file, fsynced, moved into place, with the umask's mode)
    atomic_write(path, lambda handle: torch.save({"state_dict": state_dict, "unitscope": metadata}, handle))
    return path
