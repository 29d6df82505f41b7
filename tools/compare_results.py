"""Compare two results directories of the same command: are the numbers the same, byte for byte?

Used to check that a change to how unitscope is built (not to what it
computes) leaves the results alone, e.g. ``make demo`` before and after::

    python tools/compare_results.py BEFORE/demo AFTER/demo

Compared: every CSV, JSON and NPZ outside ``report/`` (``run.json``, which
holds timings, and ``.partial/`` left out), by sha256; JSON files that
differ are compared again with the keys that only list picture files
(``pictures``, ``examples``, ``thumbnails``, ``picture``) removed; every
PNG/JPEG of BEFORE is compared pixel for pixel with the file at the same
path in AFTER or in ``AFTER/report/pictures`` (where the report draws what
the results now hold as arrays).  Ends with ``name=value`` lines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

PICTURE_KEYS = {"pictures", "examples", "thumbnails", "picture"}
DATA_SUFFIXES = {".csv", ".json", ".npz"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def _files(root: Path, suffixes: set[str]) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if (path.is_file() and path.suffix.lower() in suffixes and rel.parts[0] != "report"
                and path.name != "run.json" and ".partial" not in rel.parts and not path.name.startswith(".")):
            out[rel.as_posix()] = path
    return out


def _without_pictures(value):
    if isinstance(value, dict):
        return {k: _without_pictures(v) for k, v in value.items() if k not in PICTURE_KEYS}
    if isinstance(value, list):
        return [_without_pictures(v) for v in value]
    return value


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    before, after = _files(args.before, DATA_SUFFIXES), _files(args.after, DATA_SUFFIXES)
    both = sorted(set(before) & set(after))
    figures = {}
    for suffix in (".csv", ".npz", ".json"):
        names = [n for n in both if n.endswith(suffix)]
        same = [n for n in names if _digest(before[n]) == _digest(after[n])]
        figures[f"{suffix[1:]}_compared"], figures[f"{suffix[1:]}_identical"] = len(names), len(same)
        if suffix == ".json":
            differ = [n for n in names if n not in same]
            only_pictures = [n for n in differ if _without_pictures(json.loads(before[n].read_text()))
                             == _without_pictures(json.loads(after[n].read_text()))]
            figures["json_differing_only_in_picture_keys"] = len(only_pictures)
            for n in differ:
                print(("picture keys only: " if n in only_pictures else "DIFFERS: ") + n)
        else:
            for n in names:
                if n not in same:
                    print(f"DIFFERS: {n}")
    for n in sorted(set(before) - set(after)):
        print(f"only before: {n}")
    for n in sorted(set(after) - set(before)):
        print(f"only after: {n}")
    figures["only_before"], figures["only_after"] = len(set(before) - set(after)), len(set(after) - set(before))
    images = _files(args.before, IMAGE_SUFFIXES)
    same_pixels = missing = 0
    for rel, path in images.items():
        match = next((p for p in (args.after / rel, args.after / "report" / "pictures" / rel) if p.is_file()), None)
        if match is None:
            missing += 1
            print(f"image missing after: {rel}")
        elif np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(match))):
            same_pixels += 1
        else:
            print(f"PIXELS DIFFER: {rel}")
    figures.update(images_compared=len(images), images_same_pixels=same_pixels, images_missing=missing)
    for name, value in figures.items():
        print(f"{name}={value}")


if __name__ == "__main__":
    main()
