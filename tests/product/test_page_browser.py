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


READ_SIMILAR = """() => [...document.querySelectorAll('article.result')].map(c => {
  const s = c.querySelector('.similar');
  return {filename: c.dataset.filename, state: c.dataset.state, json: c.dataset.json || null,
    count: s && s.dataset.count, shown: !!s && s.offsetParent !== null,
    scrolls: !!s && s.querySelector('.similar-row').scrollWidth > s.querySelector('.similar-row').clientWidth,
    matches: [...c.querySelectorAll('.similar figure.match')].map(m => {
      const img = m.querySelector('img');
      return {id: m.dataset.id, score: Number(m.dataset.score), text: m.querySelector('.match-score').textContent,
        label: m.querySelector('.match-label').textContent, shown_id: m.querySelector('.match-id').textContent,
        src: img.getAttribute('src'), alt: img.alt, lazy: img.loading === 'lazy',
        loaded: img.complete && img.naturalWidth > 0, width: m.getBoundingClientRect().width};
    })};
})"""

def _close(got, want, tol=1e-4) -> bool:
    """JSON equal up to float noise: the page's photos are micro-batched together, the API call's alone."""
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(_close(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_close, got, want))
    if isinstance(want, float):
        return isinstance(got, (int, float)) and abs(got - want) <= tol
    return got == want


THUMBS_LOADED = """() => { const imgs = [...document.querySelectorAll('.similar figure.match img')];
  return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }"""


def test_page_shows_similar_products(live_server, catalog, shots):
    """With a catalog index each photo goes to /v1/similar: the card is the tags answer as before, and a strip
    shows the 8 matches in the API's order (the photo itself first: every catalog photo is in the index)."""
    import json

    import httpx
    from playwright.sync_api import sync_playwright
    files = sorted((catalog / "shoes").glob("*.jpg"))[:2]
    with httpx.Client(base_url=live_server.url, timeout=60) as c:
        similar = c.get("/v1/model").json()["similar"]
        api = {f.name: c.post("/v1/similar", params={"k": 8},
                              files={"file": (f.name, f.read_bytes(), "image/jpeg")}).json() for f in files}
    assert similar and similar["items"] >= 8
    with sync_playwright() as p:
        browser, page = _open(p, live_server.url, {"width": 1280, "height": 900})
        model_info = page.inner_text("#model-info")
        page.set_input_files("#files", [str(f) for f in files])
        page.wait_for_function("() => document.querySelectorAll('article.result[data-state=done]').length == 2",
                               timeout=30_000)
        page.wait_for_function(THUMBS_LOADED, timeout=30_000)
        cards = page.evaluate(READ_SIMILAR)
        page.screenshot(path=str(shots / "page-similar.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.locator(".similar").first.scroll_into_view_if_needed()
        page.wait_for_function(THUMBS_LOADED, timeout=30_000)
        phone = page.evaluate(READ_SIMILAR)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        page.screenshot(path=str(shots / "page-similar-phone.png"))
        browser.close()
    assert f"similar products: {similar['items']} in the catalog" in model_info
    assert [c["filename"] for c in cards] == [f.name for f in files]
    for f, card in zip(files, cards):
        want = api[f.name]
        assert _close(json.loads(card["json"]), want["tags"])  # Copy JSON copies the tags answer
        assert card["shown"] and card["count"] == "8" and len(card["matches"]) == 8
        assert [m["id"] for m in card["matches"]] == [w["id"] for w in want["matches"]]
        assert card["matches"][0]["id"] == f.stem
        assert card["matches"][0]["score"] == pytest.approx(1, abs=1e-3)
        for m, w in zip(card["matches"], want["matches"]):
            assert m["score"] == pytest.approx(w["score"], abs=1e-4) and m["text"] == f"{m['score']:.2f}"
            assert m["label"] == w["labels"].get("articleType", next(iter(w["labels"].values())))
            assert m["shown_id"] == w["id"] and m["src"] == w["image"] and m["lazy"] and w["id"] in m["alt"]
            assert m["loaded"] and m["width"] == pytest.approx(96, abs=1)
    assert all(c["scrolls"] and len(c["matches"]) == 8 for c in phone)  # 8 x 96 px do not fit in 390 px: it scrolls
    assert overflow <= 0
