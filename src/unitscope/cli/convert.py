"""``unitscope convert``: any annotated pool as a Broden directory (SPEC section 8)."""

from __future__ import annotations

from typing import Optional

import typer

from unitscope.cli._options import shared
from unitscope.study.progress import tqdm_bars

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command()
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
        from unitscope.study.convert import convert_pool

        result = convert_pool(o.data, o.layout, o.classes, out=o.out, image_size=image_size, mask_size=mask_size,
                              limit=limit, overwrite=overwrite, progress=tqdm_bars(unit="img"))
        present = result.present()
        by_category = ", ".join(f"{cat} {n}/{len(result.concepts.in_category(cat))}" for cat, n in present.items())
        typer.echo(f"converted {result.images} images to {result.out}: {sum(present.values())} of "
                   f"{len(result.concepts)} concepts present ({by_category})")
