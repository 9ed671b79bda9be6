"""The web page as a person uses it: `vislab serve` on a free loopback port, Debian's chromium driven by
Playwright. Real product photos are uploaded through the file picker; every rendered label, confidence,
top-3, caption and review badge equals the API's own answer for the same file. A corrupt file shows a
readable error on its card. Screenshots go to $VISLAB_SCREENSHOTS (else the test's tmp folder)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser import ARGS, chromium

READ_CARDS = """() => [...document.querySelectorAll('article.result')].map(c => ({
  filename: c.dataset.filename, state: c.dataset.state, json: c.dataset.json || null,
  caption: (c.querySelector('.caption') || {}).textContent || '',
  badge: !!c.querySelector('.badge.review') && c.querySelector('.badge.review').offsetParent !== null,
  error: (c.querySelector('.error') || {}).textContent || '',
  attrs: [...c.querySelectorAll('.attr')].map(a => ({task: a.dataset.task,
    label: a.querySelector('.label').textContent, conf: a.querySelector('.conf').textContent,
    topk: a.querySelector('.topk').textContent, width: a.querySelector('.bar .fill').style.width,
    review: a.classList.contains('needs-review')})),
}))"""


def _pct(c: float) -> str:
    return f"{round(c * 100)}%"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    p = Path(os.environ.get("VISLAB_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    p.mkdir(parents=True, exist_ok=True)
    return p


def _open(p, url, viewport):
    browser = p.chromium.launch(executable_path=chromium(), args=ARGS)
    page = browser.new_page(viewport=viewport)
    page.goto(url)
    page.wait_for_selector("#model-info[data-state=ready]", timeout=30_000)
    return browser, page


@pytest.mark.realdata
def test_page_shows_the_api_answer_for_real_photos(live_server, fashion_products, shots):
    import httpx
    from playwright.sync_api import sync_playwright
    files = sorted((fashion_products / "images").glob("*.jpg"))[:3]
    with httpx.Client(base_url=live_server.url, timeout=60) as c:
        api = {f.name: c.post("/v1/tag", files={"file": (f.name, f.read_bytes(), "image/jpeg")}).json()
               for f in files}
    with sync_playwright() as p:
        browser, page = _open(p, live_server.url, {"width": 1280, "height": 900})
        page.set_input_files("#files", [str(f) for f in files])
        page.wait_for_function("() => document.querySelectorAll('article.result[data-state=done]').length == 3",
                               timeout=30_000)
        cards = page.evaluate(READ_CARDS)
        page.screenshot(path=str(shots / "page-tagged.png"), full_page=True)
        browser.close()
    assert [c["filename"] for c in cards] == [f.name for f in files]
    for card in cards:
        want = api[card["filename"]]
        assert card["caption"] == want["caption"]
        assert card["badge"] == want["needs_review"]
        assert [a["task"] for a in card["attrs"]] == list(want["attributes"])
        for a in card["attrs"]:
            w = want["attributes"][a["task"]]
            assert a["label"] == w["label"] and a["conf"] == _pct(w["confidence"])
            assert a["topk"] == " · ".join(f"{k['label']} {_pct(k['confidence'])}" for k in w["top_k"][:3])
            assert float(a["width"].rstrip("%")) == pytest.approx(100 * w["confidence"], abs=0.1)
            assert a["review"] == w["needs_review"]


def test_page_shows_a_readable_error_for_a_corrupt_file(live_server, catalog, shots, tmp_path):
    from playwright.sync_api import sync_playwright
    good = sorted((catalog / "shoes").glob("*.jpg"))[0]
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(good.read_bytes()[:400])
    with sync_playwright() as p:
        browser, page = _open(p, live_server.url, {"width": 390, "height": 844})
        page.set_input_files("#files", [str(bad), str(good)])
        page.wait_for_function("() => [...document.querySelectorAll('article.result')]"
                               ".every(c => c.dataset.state != 'pending')", timeout=30_000)
        cards = page.evaluate(READ_CARDS)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        page.screenshot(path=str(shots / "page-error-phone.png"), full_page=True)
        browser.close()
    err, ok = cards
    assert err["state"] == "error" and err["json"] is None
    assert "Could not tag corrupt.jpg" in err["error"] and "truncated" in err["error"]
    assert ok["state"] == "done" and len(ok["attrs"]) == 6
    assert overflow <= 0
