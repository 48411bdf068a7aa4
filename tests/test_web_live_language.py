"""The Live tab with Auto, in Debian's Chromium, whose fake microphone speaks Spanish (leopard_test_es.wav,
looped): the captions are Spanish, the page says which language and model it heard, and once the
second pass is done its text replaces the captions and the status says done."""

from __future__ import annotations

import re

import pytest
from test_web_ui import CHROMIUM, api, chromium_args, chromium_env, expect, page_of

from conftest import make_server

SPANISH_WORDS = re.compile(r"arenas|blanquecinas|grano|medio|tiene|poca", re.I)


@pytest.fixture(scope="module")
def spanish_server(tmp_path_factory):
    running = make_server(tmp_path_factory, "ui-spanish").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def spanish_browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium is needed for the web UI tests and was not found at {CHROMIUM}.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=chromium_args("leopard_test_es.wav"), env=chromium_env()
        )
        yield launched
        launched.close()


def test_spanish_live_with_auto_shows_spanish_captions_then_the_second_pass(spanish_browser, spanish_server):
    with page_of(spanish_browser, spanish_server) as page:
        page.goto("/#live")
        page.get_by_role("button", name="Start live captions").click()
        status, captions = page.locator("#live-status"), page.locator("#live-captions")
        expect(status).to_contain_text("Spanish · base", timeout=60_000)  # the language heard, the model chosen
        expect(captions).to_contain_text(SPANISH_WORDS, timeout=60_000)
        assert not re.search(r"\b(the|you|will|website)\b", captions.inner_text(), re.I), captions.inner_text()
        page.wait_for_timeout(3_000)  # a little more speech, so the second pass has a whole sentence
        page.get_by_role("button", name="Stop live captions").click()
        expect(status).to_contain_text("Stopped", timeout=60_000)
        link = page.locator("#live-footer").get_by_role("link", name="Open in History")
        session_id = link.get_attribute("href").rsplit("/", 1)[1]

        session = spanish_server.wait_done(session_id, timeout=300)
        assert session["status"]["status"] == "done" and session["transcription"]["language"] == "es"
        final = session["transcription"]["text"]
        versions = api(spanish_server, "GET", f"/session/{session_id}/versions").json()["versions"]
        draft = next(version for version in versions if version["label"] == "live-draft")
        assert SPANISH_WORDS.search(draft["preview"]), draft
        # The page shows the second pass's text in the captions' place, and says it is done.
        expect(status).to_contain_text("Done", timeout=30_000)
        expect(status).to_contain_text("Spanish · base")
        expect(captions).to_have_text(final, timeout=10_000)
