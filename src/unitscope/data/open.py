"""Open a folder as the right kind of pool, so commands take one ``--data DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

__all__ = ["open_pool", "open_annotated_pool", "detect_pool_kind"]


def detect_pool_kind(root: str | Path) -> str:
    """``"broden"`` (an ``index.csv``), ``"camvid"`` (``images/`` + ``labels/``) or ``"plain"``.

    Raises
    ------
    FileNotFoundError
        If ``root`` does not exist.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no such data folder: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"data must be a folder, got the file {root}")
    if (root / "index.csv").exists():
        return "broden"
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return "camvid"
    return "plain"


def open_annotated_pool(root: str | Path, *, kind: str | None = None, preprocessing: Any = None,
                        classes: Sequence[str] | None = None, skip_bad: bool = False, **options):
    """Open an annotated pool (Broden directory, or image + index-mask folders).

    Parameters
    ----------
    root : path
    kind : {"broden", "camvid", "indexmask"}, optional
        Detected when omitted.  ``"indexmask"`` needs ``classes``.
    preprocessing : object with input_size, mean, std (and resize, channel_order, scale)
        The network's preprocessing.  Without a ``resize``, images are
        stretched to the input size; with a centre crop or padding the masks
        are cropped or padded alike (see :mod:`unitscope.data.transforms`).
    classes : sequence of str, optional
        Class names by pixel value for an index-mask pool (CamVid's are built in).

    Raises
    ------
    ValueError
        If the folder holds no concept masks.
    """
    from unitscope.data.annotated import IndexMaskPool, camvid_pool
    from unitscope.data.broden import BrodenPool

    kind = kind or detect_pool_kind(root)
    if kind == "broden":
        return BrodenPool(root, preprocessing=preprocessing, skip_bad=skip_bad, **options)
    if kind in ("camvid", "indexmask"):
        if classes:
            return IndexMaskPool(root, classes=list(classes), preprocessing=preprocessing,
                                 skip_bad=skip_bad, **options)
        return camvid_pool(root, preprocessing=preprocessing, skip_bad=skip_bad, **options)
    raise ValueError(
        f"{root} holds no concept masks: expected a Broden directory (index.csv, label.csv, "
        "images/) or images/ + labels/ index-mask folders"
    )


def open_pool(root: str | Path, *, kind: str | None = None, preprocessing: Any = None,
              source: str | None = None, skip_bad: bool = False, **options):
    """Open any pool: annotated when the folder has masks, a plain (ImageFolder) pool otherwise."""
    from unitscope.data.pools import PlainPool

    kind = kind or detect_pool_kind(root)
    if kind == "plain":
        return PlainPool(root, source=source, preprocessing=preprocessing, skip_bad=skip_bad,
                         label_pattern=options.get("label_pattern"))
    options.pop("label_pattern", None)
    if source is not None:
        options["source"] = source
    return open_annotated_pool(root, kind=kind, preprocessing=preprocessing, skip_bad=skip_bad, **options)
