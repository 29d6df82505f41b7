"""An annotator labels three units in a real browser (Debian's Chromium via Playwright).

The page is served by a live uvicorn server on 127.0.0.1; the test uses the
keyboard and the mouse the way an annotator would, then reads the database.
A screenshot of the page is saved under tmp_path and copied to
/tmp/unitscope_label_screenshot.png.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the labeling app needs fastapi (pip install 'unitscope[label]')")

from unitscope.label import LabelStore, create_app  # noqa: E402

from conftest_label import CHROMIUM_ARGS, LiveServer, chromium_or_skip, make_results  # noqa: E402

SCREENSHOT_COPY = Path("/tmp/unitscope_label_screenshot.png")


def test_annotator_labels_three_units_with_keyboard_and_mouse(tmp_path):
    chromium = chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    results = make_results(
        tmp_path,
        networks={"scenenet": {"conv5": 4}},
        n_images=12,
        size=96,
        concepts=[(1, "bed", "object"), (2, "painting", "object"), (3, "wood", "material")],
    )
    store = LabelStore(results / "labels.sqlite")
    token = store.add_annotator("ada")
    app = create_app(results, k=3, store=store)
    problems: list[str] = []
    screenshot = tmp_path / "label_page.png"

    with LiveServer(app) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.set_default_timeout(10_000)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)

            # Log in: the token typed into the form, Enter to send.
            page.goto(server.url + "/")
            expect(page.locator("h1")).to_have_text("Log in")
            page.locator("#token").click()
            page.keyboard.type(token)
            page.keyboard.press("Enter")
            unit_name = page.locator("#unit-name")
            expect(unit_name).to_have_text("scenenet · conv5 · unit 0")
            tiles = page.locator("#grid .tile")
            expect(tiles).to_have_count(12)
            assert page.locator("#concepts option").count() == 6  # bed, red-c, sky, striped + painting, wood
            assert page.evaluate("document.activeElement.id") == "concept"

            # Unit 0, keyboard only: type, Enter, 5 (object), a tile marked with Space, Enter.
            page.keyboard.type("bed")
            page.keyboard.press("Enter")
            expect(page.locator("#message")).to_contain_text("press 1–6")
            page.keyboard.press("5")
            expect(page.locator("#type-object")).to_have_attribute("aria-checked", "true")
            tiles.nth(2).focus()
            page.keyboard.press("Space")
            expect(tiles.nth(2)).to_have_class("tile marked")
            expect(page.locator("#marked-count")).to_have_text("1")
            page.keyboard.press("Enter")
            expect(unit_name).to_have_text("scenenet · conv5 · unit 1")

            # Unit 1, mouse only: two tiles, the field, the region button, Submit.
            tiles.nth(0).click()
            tiles.nth(3).click()
            tiles.nth(5).click()
            tiles.nth(5).click()  # a second click un-marks
            expect(page.locator("#marked-count")).to_have_text("2")
            expect(page.locator("#precision")).to_have_text("83%")
            page.locator("#concept").click()
            page.keyboard.type("sky")
            page.locator("#type-region").click()
            page.locator("#submit").click()
            expect(unit_name).to_have_text("scenenet · conv5 · unit 2")

            # Unit 2, both: click a tile, type, Escape, 2 (texture), Enter.
            tiles.nth(1).click()
            tiles.nth(7).click()
            page.locator("#concept").click()
            page.keyboard.type("striped")
            page.keyboard.press("Escape")
            page.keyboard.press("2")
            expect(page.locator("#type-texture")).to_have_attribute("aria-checked", "true")
            expect(page.locator("#progress-text")).to_contain_text("2 / 12 annotations")
            page.screenshot(path=str(screenshot), full_page=True)
            page.keyboard.press("Enter")
            expect(unit_name).to_have_text("scenenet · conv5 · unit 3")
            expect(page.locator("#progress-text")).to_contain_text("3 / 12 annotations")
            expect(page.locator("#marked-count")).to_have_text("0")
        finally:
            browser.close()

    shutil.copyfile(screenshot, SCREENSHOT_COPY)
    assert screenshot.stat().st_size > 10_000
    assert problems == []
    stored = [(a.annotator, a.unit, a.label, a.type, a.marked, a.n_images) for a in store.answers()]
    assert stored == [
        ("ada", 0, "bed", "object", ("img0x2",), 12),
        ("ada", 1, "sky", "region", ("img1x0", "img1x3"), 12),
        ("ada", 2, "striped", "texture", ("img2x1", "img2x7"), 12),
    ]
    assert all(a.shown_at is not None and a.shown_at <= a.submitted_at for a in store.answers())
