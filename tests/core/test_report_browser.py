"""A run report as a person sees it: report.html rendered in headless Chromium (Debian's `chromium`, driven by
Playwright with `executable_path`; Playwright never downloads a browser). Every image loads, nothing overflows
the page width on a laptop or a phone, and the summary card is above the fold."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser import ARGS, chromium

CHECK = """() => {
  const imgs = [...document.images];
  const card = document.querySelector('section.card');
  const r = card ? card.getBoundingClientRect() : null;
  return {
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth, height: window.innerHeight,
    cardTop: r ? r.top : null, cardBottom: r ? r.bottom : null,
    cardTitle: card ? card.querySelector('h2').textContent : null,
    first: document.querySelector('body > section, body > table, body > nav').tagName,
    wider: [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
             && !e.closest('.tables')).slice(0, 5).map(e => e.tagName + '.' + e.className),
  };
}"""


@pytest.fixture(scope="module")
def report(tiny_run) -> Path:
    run_dir, _ = tiny_run
    return run_dir / "report.html"


@pytest.mark.parametrize("viewport", [(1280, 800), (390, 844)], ids=["laptop", "phone"])
def test_report_renders_in_chromium(report, viewport, tmp_path):
    from playwright.sync_api import sync_playwright
    exe = chromium()
    w, h = viewport
    shots = Path(os.environ.get("VISLAB_SCREENSHOTS", tmp_path))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        page = browser.new_page(viewport={"width": w, "height": h})
        page.goto(report.resolve().as_uri())
        page.wait_for_load_state("load")
        got = page.evaluate(CHECK)
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / f"report-{w}x{h}.png"))
        browser.close()
    assert got["images"] >= 10, got  # curves, confusion and ROC per task, errors, class distributions
    assert got["broken"] == [], f"images that did not load: {got['broken']}"
    assert got["scrollWidth"] <= got["width"], f"the page overflows: {got['scrollWidth']} > {got['width']}"
    assert got["wider"] == [], f"elements wider than the page: {got['wider']}"
    assert got["cardTitle"] == "Summary" and got["first"] == "SECTION"  # the card comes first ...
    assert 0 <= got["cardTop"] < got["height"], got  # ... and starts above the fold
    if w >= 1000:
        assert got["cardBottom"] < got["height"] * 1.5, got  # on a laptop most of it is on the first screen
