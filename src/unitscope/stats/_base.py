"""The protocol every streaming statistic follows, and shared input checks.

A statistic is filled batch by batch with ``add``, combined with another
statistic of the same kind and configuration with ``merge`` (this is what makes
sharded and resumed runs give the same answer as one pass), saved with
``state_dict`` (plain numpy arrays and python scalars only, so the state can go
through ``pickle`` or ``np.savez``) and restored with ``load_state_dict`` or
``from_state_dict``. ``to(device)`` moves the accumulated state; ``add`` works
on whatever device its input is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["Statistic"]

STATE_VERSION = 1


class Statistic:
    """Base class of the streaming statistics (``add``/``merge``/``state_dict``).

    Subclasses implement ``add``, ``_merge_same``, ``_config``, ``_state`` and
    ``_load``, and list the tensors they hold in ``_tensor_names``.
    """

    _tensor_names: tuple[str, ...] = ()

    # --- configuration and state, implemented by subclasses -----------------
    def _config(self) -> dict[str, Any]:  # constructor keyword arguments
        return {}

    def _state(self) -> dict[str, Any]:  # numpy arrays / python scalars
        raise NotImplementedError

    def _load(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _merge_same(self, other: Statistic) -> None:
        raise NotImplementedError

    # --- public protocol ----------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Device holding the accumulated state (CPU until data arrives)."""
        for name in self._tensor_names:
            tensor = _first_tensor(getattr(self, name, None))
            if tensor is not None:
                return tensor.device
        explicit = getattr(self, "_device", None)
        return explicit if explicit is not None else torch.device("cpu")

    def _holds_tensors(self) -> bool:
        return any(_first_tensor(getattr(self, name, None)) is not None for name in self._tensor_names)

    def _place(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` on the device of the state; the first batch decides it."""
        if self._holds_tensors() or getattr(self, "_device", None) is not None:
            return tensor.to(self.device)
        return tensor

    def to(self, device: str | torch.device) -> Statistic:
        """Move the accumulated state to `device` (in place); return ``self``."""
        device = torch.device(device)
        for name in self._tensor_names:
            setattr(self, name, _moved(getattr(self, name, None), device))
        self._device = device
        return self

    def merge(self, other: Statistic) -> Statistic:
        """Add everything `other` has seen to this statistic (in place).

        Parameters
        ----------
        other : Statistic
            A statistic of the same class and configuration, e.g. the one of
            another shard of the data. It is not modified.

        Returns
        -------
        Statistic
            ``self``.

        Raises
        ------
        ValueError
            If `other` is of another kind, has another configuration or counts
            another number of units.
        """
        if type(other) is not type(self):
            raise ValueError(
                f"cannot merge a {type(other).__name__} into a {type(self).__name__}"
            )
        mine, theirs = self._config(), other._config()
        if mine != theirs:
            diff = {k: (mine.get(k), theirs.get(k)) for k in mine if mine.get(k) != theirs.get(k)}
            raise ValueError(
                f"cannot merge {type(self).__name__}s with different configurations "
                f"(this one vs other): {diff}"
            )
        self._merge_same(other)
        return self

    def state_dict(self) -> dict[str, Any]:
        """The full state as plain numpy arrays and python scalars.

        The dictionary is flat, so it can be written with ``np.savez(path,
        **stat.state_dict())`` or pickled, and read back with
        ``load_state_dict`` / ``from_state_dict``.
        """
        state = {"statistic": type(self).__name__, "version": STATE_VERSION}
        state.update(self._config())
        state.update(self._state())
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> Statistic:
        """Replace this statistic's state with `state` (from ``state_dict``).

        `state` may also be what ``np.load`` returns for a file written with
        ``np.savez`` (scalars then come back as 0-d arrays). The state is put
        on the device this statistic is on. Returns ``self``.

        Raises
        ------
        ValueError
            If `state` belongs to another statistic, another configuration or
            another version, or lacks an entry.
        """
        plain = _plain_state(state)
        kind = plain.get("statistic")
        if kind != type(self).__name__:
            raise ValueError(f"state is of a {kind!r}, not of a {type(self).__name__!r}")
        if plain.get("version") != STATE_VERSION:
            raise ValueError(
                f"state version {plain.get('version')!r} is not supported "
                f"(this code reads version {STATE_VERSION})"
            )
        for key, value in self._config().items():
            if key not in plain:
                raise ValueError(f"state lacks the entry {key!r}")
            if plain[key] != value:
                raise ValueError(
                    f"state has {key}={plain[key]!r} but this {type(self).__name__} "
                    f"has {key}={value!r}; use {type(self).__name__}.from_state_dict(state)"
                )
        device = self.device
        try:
            self._load(plain)
        except KeyError as err:
            raise ValueError(f"state lacks the entry {err.args[0]!r}") from None
        self.to(device)
        return self

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], *, device: str | torch.device = "cpu"):
        """Construct a statistic from the output of ``state_dict``.

        Parameters
        ----------
        state : mapping
            What ``state_dict`` returned (possibly through ``np.savez``/``np.load``
            or ``pickle``).
        device : str or torch.device, optional
            Where to put the state. Default CPU.
        """
        plain = _plain_state(state)
        config = {key: plain[key] for key in cls._config_keys() if key in plain}
        stat = cls(**config)
        stat.to(device)
        return stat.load_state_dict(plain)

    @classmethod
    def _config_keys(cls) -> tuple[str, ...]:
        return ()

    def __repr__(self) -> str:
        config = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({config})"


def _first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor in `value` (a tensor or nested lists of them), or None."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, list):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _moved(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list):
        return [_moved(item, device) for item in value]
    return value


def _plain_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """Turn 0-d numpy arrays (what ``np.savez`` makes of scalars) back into scalars."""
    if not isinstance(state, Mapping) and not hasattr(state, "files"):
        raise ValueError(f"state must be a mapping from state_dict(), not {type(state).__name__}")
    keys = state.files if hasattr(state, "files") else list(state.keys())
    plain: dict[str, Any] = {}
    for key in keys:
        value = state[key]
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        elif isinstance(value, np.generic):
            value = value.item()
        plain[key] = value
    return plain


# --- input checks shared by the statistics --------------------------------------
def as_tensor(values: Any, name: str) -> torch.Tensor:
    """`values` as a tensor (numpy arrays are wrapped without copying)."""
    if isinstance(values, torch.Tensor):
        return values.detach()
    try:
        return torch.as_tensor(np.asarray(values))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a tensor or array, not {type(values).__name__}") from err


def check_matrix(values: Any, name: str, *, expected_columns: int | None, what: str) -> torch.Tensor:
    """Check `values` is a real (N, C) matrix, optionally with C == expected_columns."""
    values = as_tensor(values, name)
    if values.dim() != 2:
        raise ValueError(
            f"{name} must be a 2-D tensor (N, C) with one column per {what}; "
            f"got shape {tuple(values.shape)}"
        )
    if values.dtype == torch.bool or values.is_complex():
        raise ValueError(f"{name} must hold real numbers, not {values.dtype}")
    if expected_columns is not None and values.shape[1] != expected_columns:
        raise ValueError(
            f"{name} has {values.shape[1]} columns ({what}s) but this statistic "
            f"already counts {expected_columns}"
        )
    return values


def check_no_nan(values: torch.Tensor, name: str) -> None:
    """Raise ValueError when a floating tensor holds NaN."""
    if values.is_floating_point():
        nans = torch.isnan(values)
        if bool(nans.any()):
            raise ValueError(
                f"{name} contain NaN ({int(nans.sum())} of {values.numel()} entries); "
                "remove or replace them before add()"
            )


def float_dtype(values: torch.Tensor) -> torch.dtype:
    """float64 stays float64; every other real dtype is accumulated as float32."""
    return torch.float64 if values.dtype == torch.float64 else torch.float32
