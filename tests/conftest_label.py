"""Helpers shared by the labeling-app tests (imported, not a pytest conftest).

* :func:`make_results`: a tiny results directory in the layout the dissection
  writes (``units.csv`` + segmentation JPEGs drawn with PIL);
* :class:`LiveServer`: the app under uvicorn in a thread, on 127.0.0.1 and a
  free port picked by the OS;
* :func:`chromium_or_skip`: Debian's Chromium for Playwright, or a skip that
  says how to install it;
* :func:`lab_results`, :func:`open_lab`, :func:`bearer`, :func:`answer`: the
  app with four annotators over four units, for the app and security tests,
  and the fixtures ``results`` and ``lab`` made from them (a test module
  imports them to use them).
"""

from __future__ import annotations

import csv
import socket
import threading
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import pytest
from PIL import Image, ImageDraw

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

UNITS_COLUMNS = ["network", "layer", "unit", "label", "category", "type", "iou", "threshold", "precision", "top_images"]

# (label, category, type) cycled over units, so the automatic labels are known.
AUTO_LABELS = [
    ("bed", "object", "object", 0.12),
    ("sky", "object", "region", 0.08),
    ("striped", "texture", "texture", 0.05),
    ("red-c", "color", "simple", 0.02),
    ("wheel", "part", "part", 0.06),
    ("bedroom-s", "scene", "scene", 0.03),
]


def _segmentation(seed: int, size: int) -> Image.Image:
    """A small picture with a highlighted blob, like a unit segmentation."""
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 200, size=3)
    pixels = np.clip(base + rng.normal(0, 18, size=(size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y = rng.integers(0, max(1, size - size // 4), size=2)
        w, h = rng.integers(size // 6 + 1, size // 2 + 2, size=2)
        draw.rectangle([int(x), int(y), int(x + w), int(y + h)], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    dim = Image.new("RGB", image.size, (20, 24, 32))
    mask = Image.new("L", image.size, 80)
    cx, cy = rng.integers(size // 4, 3 * size // 4, size=2)
    r = int(rng.integers(size // 6, size // 3))
    ImageDraw.Draw(mask).ellipse([int(cx - r), int(cy - r), int(cx + r), int(cy + r)], fill=255)
    image = Image.composite(image, dim, mask)
    ImageDraw.Draw(image).ellipse([int(cx - r), int(cy - r), int(cx + r), int(cy + r)], outline=(255, 214, 0), width=2)
    return image


def make_results(
    root: Path,
    *,
    networks: dict[str, dict[str, int]] | None = None,
    n_images: int = 6,
    size: int = 48,
    extra_labels: dict[tuple[str, str, int], str] | None = None,
    concepts: list[tuple[int, str, str]] | None = None,
) -> Path:
    """Write a results directory under ``root`` and return it.

    ``networks`` maps network -> {layer: number of units}; unit ``u`` of a
    layer gets ``AUTO_LABELS[u % 6]`` as its automatic label and ``n_images``
    segmentations ``000_img<u>x<r>.jpg`` ... ; ``extra_labels`` overrides the
    automatic label of some units.
    """
    networks = networks or {"scenenet": {"conv4": 2, "conv5": 3}}
    extra_labels = extra_labels or {}
    results = root / "results"
    seed = 0
    for network, layers in networks.items():
        rows = []
        for layer, count in layers.items():
            for unit in range(count):
                label, category, kind, iou = AUTO_LABELS[unit % len(AUTO_LABELS)]
                label = extra_labels.get((network, layer, unit), label)
                ids = [f"img{unit}x{rank}" for rank in range(n_images)]
                rows.append([network, layer, unit, label, category, kind, iou, 0.5, 0.7, ";".join(ids)])
                folder = results / network / "segmentations" / layer / str(unit)
                folder.mkdir(parents=True, exist_ok=True)
                for rank, image_id in enumerate(ids):
                    seed += 1
                    _segmentation(seed, size).save(folder / f"{rank:03d}_{image_id}.jpg", quality=85)
        dissect = results / network / "dissect"
        dissect.mkdir(parents=True, exist_ok=True)
        with open(dissect / "units.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(UNITS_COLUMNS)
            writer.writerows(rows)
    if concepts:
        with open(results / "concepts.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["number", "name", "category"])
            writer.writerows(concepts)
    return results


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """Run an ASGI app with uvicorn in a background thread on 127.0.0.1.

    The listening socket is bound here (port 0: the OS picks a free port) and
    handed to uvicorn, so there is no race for the port.
    """

    def __init__(self, app: Any):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, limit_concurrency=200)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def chromium_or_skip() -> str:
    """Path of Debian's Chromium, or skip the test saying how to get it."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install -y chromium); browser test skipped")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    return str(CHROMIUM)


SCRIPT = "<script>alert(1)</script>"


def lab_results(root: Path) -> Path:
    """Four units of scenenet/conv5 with six segmentations each; unit 3's automatic label is a script."""
    return make_results(root, networks={"scenenet": {"conv5": 4}}, n_images=6, extra_labels={("scenenet", "conv5", 3): SCRIPT})


@contextmanager
def open_lab(results: Path, **options: Any) -> Iterator[tuple[Any, dict[str, str], Any]]:
    """The app (k=2 unless told) with annotators ada, bo, cy, dan: ``(client, tokens, store)``."""
    from fastapi.testclient import TestClient

    from unitscope.label import LabelStore, create_app

    store = LabelStore(results / "labels.sqlite")
    tokens = {name: store.add_annotator(name) for name in ("ada", "bo", "cy", "dan")}
    app = create_app(results, store=store, **{"k": 2, "n_images": 60, **options})
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, tokens, store


@pytest.fixture
def results(tmp_path):
    return lab_results(tmp_path)


@pytest.fixture
def lab(results):
    """An app with k=2 and four annotators; returns (client, tokens, store)."""
    with open_lab(results) as opened:
        yield opened


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def answer(unit: int, **fields: Any) -> dict[str, Any]:
    body = {"network": "scenenet", "layer": "conv5", "unit": unit, "label": "bed", "type": "object", "marked": []}
    body.update(fields)
    return body
