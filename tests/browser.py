"""Debian's chromium for the browser tests, driven by Playwright with `executable_path` (Playwright never
downloads a browser). Missing: the test skips, except under CI=true (make test installs chromium)."""
from __future__ import annotations

import os
import shutil

import pytest

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
"""The flags this machine needs: without the background-networking ones Chromium's connections are refused."""


def chromium() -> str:
    path = os.environ.get("VISLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing under CI=true (make test installs Debian's chromium)")
        pytest.skip("chromium not installed (make test installs it)")
    pytest.importorskip("playwright.sync_api")
    return path
