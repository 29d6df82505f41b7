"""``unitscope convert``: any annotated pool as a Broden directory (SPEC section 8)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from unitscope.cli._common import friendly_errors
from unitscope.cli._options import shared
from unitscope.study.progress import step, tqdm_bars

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    @shared("data", "out", data="Annotated pool: any layout unitscope reads (README: pool layouts).",
            out="Broden directory to create (new or empty, or an earlier conversion with --overwrite).")
    def convert(
        o,
        image_size: Optional[str] = typer.Option(None, "--image-size", help="N or H,W: resize every image (bilinear, no crop); default: keep each image's size."),
        mask_size: Optional[str] = typer.Option(None, "--mask-size", help="N or H,W: masks by nearest neighbour; default: half the image size, as Network Dissection."),
        limit: Optional[int] = typer.Option(None, "--limit", help="Convert only the first N images (pool order)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if an earlier `unitscope convert` wrote it."),
    ) -> None:
        """Write an annotated pool (CamVid, ADE20K, VOC, Cityscapes, index masks, Broden) in the Broden layout.

        The class list's names and categories go to label.csv and c_*.csv,
        with frequency and coverage counted on the converted masks.  The
        folder is built beside --out and moved into place at the end.
        """
        from unitscope.data.convert import check_output_folder, convert_to_broden, parse_size
        from unitscope.data.open import detect_pool_kind
        from unitscope.study import open_data

        # Every option is checked before the pool's masks are decoded (the slow part of opening it).
        sizes = {"image_size": None if image_size is None else parse_size(image_size, option="--image-size"),
                 "mask_size": None if mask_size is None else parse_size(mask_size, option="--mask-size")}
        if limit is not None and limit < 1:
            raise ValueError(f"--limit takes a whole number of images, at least 1; got {limit}")
        check_output_folder(o.out, overwrite=overwrite, source=o.data)
        pool = open_data(o.data, o.layout, o.classes, preprocessing=None, annotated=True,
                         progress=tqdm_bars(unit="mask"))
        kind = detect_pool_kind(o.data, classes=o.classes) if o.layout == "auto" else o.layout
        provenance = {"layout": kind, "classes": None if o.classes is None else str(Path(o.classes).resolve())}
        with step(tqdm_bars(total=min(len(pool), limit or len(pool)), unit="img"), "convert") as callback:
            result = convert_to_broden(pool, o.out, **sizes, limit=limit, overwrite=overwrite,
                                       provenance=provenance, progress=callback)
        present = result.present()
        by_category = ", ".join(f"{cat} {n}/{len(result.concepts.in_category(cat))}" for cat, n in present.items())
        typer.echo(f"converted {result.images} images to {result.out}: {sum(present.values())} of "
                   f"{len(result.concepts)} concepts present ({by_category})")
