"""The report in a real browser (Debian's Chromium driven by Playwright), opened from disk.

Opens ``index.html`` through ``file://`` (no server), checks that every
image loaded, that typing into the unit table's filter hides rows, that
sorting works, and that a unit page opens from its link and shows its
images.  Screenshots are saved under tmp_path and copied to
/tmp/unitscope_report_main.png and /tmp/unitscope_report_unit.png.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest_label import CHROMIUM_ARGS, chromium_or_skip
from fake_results import make_fake_results

from unitscope.report import build_report

MAIN_COPY = Path("/tmp/unitscope_report_main.png")
UNIT_COPY = Path("/tmp/unitscope_report_unit.png")

# Images that are in the DOM but failed to load (or are not loaded yet).
BROKEN_IMAGES = """
() => Array.from(document.images)
  .filter(img => !(img.complete && img.naturalWidth > 0))
  .map(img => img.getAttribute('src'))
"""


def _open_page(browser, problems: list[str]):
    """A page of 1280 x 900 whose page errors, console errors and failed requests go to ``problems``."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(10_000)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    return page


def _wait_images(page) -> list[str]:
    page.wait_for_function("() => Array.from(document.images).every(img => img.complete)", timeout=10_000)
    return page.evaluate(BROKEN_IMAGES)


def test_report_opens_from_disk_filters_units_and_opens_a_unit_page(tmp_path):
    chromium = chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    index = build_report(make_fake_results(tmp_path))
    problems: list[str] = []
    main_shot, unit_shot = tmp_path / "report_main.png", tmp_path / "report_unit.png"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = _open_page(browser, problems)

            page.goto(index.as_uri())
            expect(page.locator("h1")).to_have_text("unitscope report: scenenet vs objectnet")
            expect(page.locator("#finding-emerge dd")).to_contain_text("Yes. In scenenet, 5 of the 12 units")
            n_images = page.locator("img").count()
            assert n_images >= 30  # plots, thumbnails, minimal pairs, RF maps, tiles, localisation
            assert _wait_images(page) == []
            page.screenshot(path=str(main_shot), full_page=False)

            rows = page.locator("#unit-table tbody tr")
            visible = page.locator("#unit-table tbody tr:visible")
            count = page.locator("#unit-count")
            assert rows.count() == 24
            expect(count).to_have_text("24 units")

            # type into the filter box: only the rows mentioning "bookcase" stay
            page.locator("#unit-filter").fill("bookcase")
            expect(visible).to_have_count(1)
            expect(count).to_have_text("1 of 24 units")
            assert page.locator("#unit-table tbody tr[hidden]").count() == 23
            # two words must both match; the network menu and the detector box narrow further
            page.locator("#unit-filter").fill("bed conv5")
            expect(visible).to_have_count(4)  # scenenet bed, bed, bedroom; objectnet bed
            page.locator("#unit-network").select_option("scenenet")
            expect(visible).to_have_count(3)
            page.locator("#unit-filter").fill("")
            page.locator("#unit-detectors").check()
            expect(visible).to_have_count(8)  # scenenet's detectors: 3 in conv3, 5 in conv5
            page.locator("#unit-detectors").uncheck()
            page.locator("#unit-network").select_option("")
            expect(visible).to_have_count(24)

            # sort by IoU, descending on the second click: scenenet conv5 unit 0 (0.12) first
            iou_header = page.locator("#unit-table thead th", has_text="IoU")
            iou_header.click()
            expect(iou_header).to_have_attribute("aria-sort", "ascending")
            iou_header.click()
            expect(iou_header).to_have_attribute("aria-sort", "descending")
            expect(rows.first.locator("td").nth(6)).to_have_text("0.12")

            # a unit page opens from its link
            page.locator("#unit-filter").fill("bookcase")
            page.locator("#unit-table tbody tr:visible a").first.click()
            page.wait_for_url("**/units/scenenet/conv5/3.html")
            expect(page.locator("#unit-title")).to_have_text("scenenet · conv5 · unit 3")
            expect(page.locator("#segmentations img")).to_have_count(3)
            assert _wait_images(page) == []
            expect(page.locator("#best-labels")).to_contain_text("bookcase")
            page.screenshot(path=str(unit_shot), full_page=True)
            page.locator("#previous-unit").click()
            expect(page.locator("#unit-title")).to_have_text("scenenet · conv5 · unit 2")
            page.locator("a", has_text="All units").click()
            expect(page.locator("#unit-table")).to_be_visible()
        finally:
            browser.close()

    assert problems == []
    for shot, copy in ((main_shot, MAIN_COPY), (unit_shot, UNIT_COPY)):
        assert shot.stat().st_size > 10_000
        try:
            shutil.copyfile(shot, copy)
        except OSError:  # a read-only /tmp must not fail the test
            pass


PUBLISHED_COPY = Path("/tmp/unitscope_report_published.png")


def test_the_papers_own_data_sections_open_beside_the_users_networks(tmp_path):
    """Imported published results (hand-made, small) beside the fake dissections: the three new sections."""
    chromium = chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    from published_files import SMALL, write_crowd, write_table

    from unitscope.published import import_iclr15, import_netdissect

    results = make_fake_results(tmp_path)
    import_iclr15(write_crowd(tmp_path / "toy.mat", SMALL), network="toy-places", out=results)
    import_netdissect(write_table(tmp_path / "toy.csv"), network="toy-places", layer="conv5", out=results)
    import_netdissect(write_table(tmp_path / "toy.csv", rows=["1,object,car,0.2,car,1,1,1,0.2,,0,0,0,0"]),
                      network="toy-imagenet", layer="conv5", out=results)
    index = build_report(results)
    shot = tmp_path / "report_published.png"
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = _open_page(browser, problems)
            page.goto(index.as_uri())
            assert _wait_images(page) == []
            page.locator("nav a", has_text="Paper: Experiment 3").click()
            expect(page.locator("#crowd h3")).to_have_text(["toy-places"])
            expect(page.locator("#crowd img")).to_have_count(1)
            expect(page.locator("#crowd table tbody tr")).to_have_count(2)  # layers low, high
            expect(page.locator("#published .answer")).to_contain_text(
                "Does the scene network (toy-places) have more object detectors than the object network "
                "(toy-imagenet)? Yes: Network Dissection, best label per unit: IoU > 0.04 at conv5: 3 vs 1")
            page.locator("nav a", has_text="Reference networks").click()
            rows = page.locator("#reference table tbody tr")
            expect(rows).to_have_count(4)
            expect(rows.filter(has_text="dissected by unitscope")).to_have_count(2)
            expect(rows.filter(has_text="published (toy.csv)")).to_have_count(2)
            expect(page.locator("#reference img")).to_have_count(1)
            page.locator("#published").screenshot(path=str(shot))
        finally:
            browser.close()
    assert problems == []
    assert shot.stat().st_size > 10_000
    try:
        shutil.copyfile(shot, PUBLISHED_COPY)
    except OSError:
        pass
