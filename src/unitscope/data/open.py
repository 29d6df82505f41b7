"""Open a folder as the right kind of pool, so commands take one ``--data DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["open_pool", "open_annotated_pool", "detect_pool_kind"]


def detect_pool_kind(root: str | Path, *, classes: Any = None) -> str:
    """The layout of ``root``: a name of :data:`~unitscope.data.layouts.LAYOUTS`, ``"plain"`` without masks.

    Raises
    ------
    FileNotFoundError
        If ``root`` does not exist.
    ValueError
        If the layout is ambiguous or unknown (see :func:`~unitscope.data.layouts.detect_layout`).
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no such data folder: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"data must be a folder, got the file {root}")
    from unitscope.data.layouts import detect_layout

    return detect_layout(root, classes=classes)


def open_annotated_pool(root: str | Path, *, kind: str | None = None, preprocessing: Any = None,
                        classes: Any = None, skip_bad: bool = False, **options):
    """Open an annotated pool (Broden directory, or image + index-mask folders).

    Parameters
    ----------
    root : path
    kind : str, optional
        The layout (``--layout``): one of :data:`~unitscope.data.layouts.LAYOUTS`;
        detected when omitted or ``"auto"``.
    preprocessing : object with input_size, mean, std (and resize, channel_order, scale)
        The network's preprocessing.  Without a ``resize``, images are
        stretched to the input size; with a centre crop or padding the masks
        are cropped or padded alike (see :mod:`unitscope.data.transforms`).
    classes : path, ClassList or sequence of str, optional
        The class list of an index-mask pool (``--classes``): a class file,
        a :class:`~unitscope.data.classlist.ClassList` or names by pixel value.

    Raises
    ------
    ValueError
        If the folder holds no concept masks, its layout is ambiguous or
        unknown, or ``classes`` is given for a Broden directory.
    """
    from unitscope.data.broden import BrodenPool
    from unitscope.data.layouts import INDEX_MASK_LAYOUTS, open_index_mask_pool

    kind = _layout(root, kind, classes)
    if kind == "broden":
        if classes is not None:
            raise ValueError(f"--classes is for index-mask pools; the Broden directory {root} has its own label.csv")
        return BrodenPool(root, preprocessing=preprocessing, skip_bad=skip_bad, **options)
    if kind in INDEX_MASK_LAYOUTS:
        return open_index_mask_pool(root, kind, classes=classes, preprocessing=preprocessing,
                                    skip_bad=skip_bad, **options)
    from unitscope.data.layouts import layouts_hint

    raise ValueError(f"{root} holds no concept masks; {layouts_hint()}")


def open_pool(root: str | Path, *, kind: str | None = None, preprocessing: Any = None,
              source: str | None = None, skip_bad: bool = False, **options):
    """Open any pool: annotated when the folder has masks, a plain (ImageFolder) pool otherwise."""
    from unitscope.data.pools import PlainPool

    kind = _layout(root, kind, options.get("classes"))
    if kind == "plain":
        if options.get("classes") is not None:
            raise ValueError(f"--classes is for index-mask pools; {root} is opened as a plain pool (no masks)")
        return PlainPool(root, source=source, preprocessing=preprocessing, skip_bad=skip_bad,
                         label_pattern=options.get("label_pattern"))
    options.pop("label_pattern", None)
    if source is not None:
        options["source"] = source
    return open_annotated_pool(root, kind=kind, preprocessing=preprocessing, skip_bad=skip_bad, **options)


def _layout(root: str | Path, kind: str | None, classes: Any) -> str:
    """``kind`` checked against the known layouts; detected when None or ``"auto"``."""
    from unitscope.data.layouts import LAYOUTS

    kind = {"indexmask": "index"}.get(kind, kind)  # the name before there were layouts
    if kind not in (None,) + LAYOUTS:
        raise ValueError(f"--layout must be one of {', '.join(LAYOUTS)}, got {kind!r}")
    return detect_pool_kind(root, classes=classes) if kind in (None, "auto") else kind
