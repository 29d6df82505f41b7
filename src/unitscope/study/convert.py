"""A pool written in the Broden layout as ``unitscope convert`` writes it: every option checked first."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from unitscope.study.inputs import open_data
from unitscope.study.progress import Progress, step

__all__ = ["convert_pool"]


def convert_pool(data: str | Path, layout: str = "auto", classes: str | Path | None = None, *, out: str | Path,
                 image_size: str | None = None, mask_size: str | None = None, limit: int | None = None,
                 overwrite: bool = False, progress: Optional[Progress] = None):
    """Open the annotated pool ``data`` (as ``layout`` says, with ``classes``) and write it as Broden in ``out``.

    Every option is checked before the pool's masks are decoded (the slow
    part of opening it); the layout and the class file are recorded in the
    conversion's marker.  The options are those of
    :func:`~unitscope.data.convert.convert_to_broden`; ``progress`` draws the
    mask check and the conversion.

    Returns
    -------
    ConvertResult
    """
    from unitscope.data.convert import check_output_folder, convert_to_broden, parse_size
    from unitscope.data.open import detect_pool_kind

    sizes = {"image_size": None if image_size is None else parse_size(image_size, option="--image-size"),
             "mask_size": None if mask_size is None else parse_size(mask_size, option="--mask-size")}
    if limit is not None and limit < 1:
        raise ValueError(f"--limit takes a whole number of images, at least 1; got {limit}")
    check_output_folder(out, overwrite=overwrite, source=data)
    pool = open_data(data, layout, classes, preprocessing=None, annotated=True, progress=progress)
    kind = detect_pool_kind(data, classes=classes) if layout == "auto" else layout
    provenance = {"layout": kind, "classes": None if classes is None else str(Path(classes).resolve())}
    with step(progress, "convert") as callback:
        return convert_to_broden(pool, out, **sizes, limit=limit, overwrite=overwrite, provenance=provenance,
                                 progress=callback)
