"""Errors raised by the pool readers."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CorruptFileError"]


class CorruptFileError(ValueError):
    """An image or mask file that is missing, unreadable or not an image.

    Parameters
    ----------
    path : str or Path
        The offending file; it is named in the message.
    reason : str
        What went wrong (``"missing"``, the decoder's message, ...).

    Attributes
    ----------
    path : Path
    reason : str
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read {self.path}: {reason}")

    def __reduce__(self):
        # Exceptions raised in DataLoader workers travel back pickled.
        return (type(self), (str(self.path), self.reason))
