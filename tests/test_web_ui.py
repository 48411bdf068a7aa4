"""The browser page, driven in Debian's Chromium against a real `tapescribe serve` and tiny.en.

Chromium's fake microphone plays a real recording (leopard_test.wav, looped), so Record and Live
transcribe real speech. The tests save screenshots of every tab at desktop and phone widths into
test-artifacts/screenshots/ (ignored by git), or, with TAPESCRIBE_UPDATE_SCREENSHOTS=1, into
docs/screenshots/ where the README shows them.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from conftest import ENGLISH_FILES, REPO, audio_file, make_server, read_pcm, write_wav

CHROMIUM = Path(os.environ.get("TAPESCRIBE_TEST_CHROMIUM", "/usr/bin/chromium"))
FAKE_MICROPHONE = "leopard_test.wav"  # "Mr. Quilter is the apostle of the middle classes ..."
SCREENSHOTS = (
    REPO / ("docs" if os.environ.get("TAPESCRIBE_UPDATE_SCREENSHOTS") == "1" else "test-artifacts") / "screenshots"
)
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    """A server of our own, so History holds exactly what these tests made."""
    running = make_server(tmp_path_factory, "ui").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium is needed for the web UI tests and was not found at {CHROMIUM}: "
            "install Debian's chromium package or set TAPESCRIBE_TEST_CHROMIUM."
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "The web UI tests need Python Playwright: pip install playwright "
            "(its own browser download is not needed; the system Chromium is used)."
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=chromium_args(FAKE_MICROPHONE), env=chromium_env()
        )
        yield launched
        launched.close()


def chromium_env() -> dict[str, str]:
    """The environment Chromium is launched with: the system temp directory for its profile and
    sockets. An in-process app in this test process points TMPDIR into its data directory
    (process_env.confine_scratch_files), and a socket path under pytest's tmp_path is too long for
    Chromium (it aborts: "Socket path too long")."""
    return {**os.environ, "TMPDIR": "/tmp", "TEMP": "/tmp", "TMP": "/tmp"}


def chromium_args(microphone: str) -> list[str]:
    """Chromium's flags, its fake microphone playing the shared recording `microphone` (looped)."""
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={audio_file(microphone)}",
    ]


@contextlib.contextmanager
def page_of(browser, server):
    """A fresh browser context on `server`; JavaScript errors on the page fail the test."""
    context = browser.new_context(base_url=server.url, viewport=DESKTOP, permissions=["microphone"])
    context.set_default_timeout(30_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" while an upload is in transit
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser, ui_server):
    with page_of(browser, ui_server) as opened:
        yield opened


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def screenshots(page, name: str, phone: dict = PHONE) -> None:
    """The page as it is now, at desktop and phone width; the phone view must not scroll sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", phone)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} at {size['width']} px is {overflow} px too wide"
        page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True, animations="disabled")
    page.set_viewport_size(DESKTOP)


def api(server, method: str, path: str, **kwargs) -> httpx.Response:
    with server.client() as client:
        return client.request(method, path, **kwargs)


def upload_via_api(server, name: str) -> str:
    with audio_file(name).open("rb") as handle:
        answer = api(server, "POST", "/transcribe-file", files={"file": (name, handle)})
    assert answer.status_code == 202, answer.text
    session_id = answer.json()["session_id"]
    server.wait_done(session_id)
    return session_id


def session_titled(server, title: str) -> dict | None:
    sessions = api(server, "GET", "/sessions", params={"limit": 500}).json()["sessions"]
    return next((s for s in sessions if s["title"] == title), None)


def format_bytes(size: int) -> str:
    """As the page writes sizes (format.js): decimal units, one decimal below 10."""
    value, units = float(size), ["bytes", "kB", "MB", "GB", "TB"]
    unit = 0
    while value >= 1000 and unit < len(units) - 1:
        value, unit = value / 1000, unit + 1
    if unit == 0:
        return f"{size:,} bytes"
    return f"{value:,.1f}".removesuffix(".0") + f" {units[unit]}" if value < 10 else f"{value:,.0f} {units[unit]}"


def words(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower())


# -- An empty History ------------------------------------------------------------------------------


def test_empty_history_says_so(browser, tmp_path_factory):
    """On a server of its own, so it runs in any order (the shared one fills up as the tests run)."""
    empty = make_server(tmp_path_factory, "ui-empty").start()
    try:
        assert api(empty, "GET", "/sessions").json()["total"] == 0
        with page_of(browser, empty) as page:
            page.goto("/#history")
            expect(page.locator("#history-message")).to_contain_text("No sessions yet")
            expect(page.locator("#storage-summary")).to_have_text("0 sessions · 0 bytes used")
            expect(page.locator("#session-view")).to_contain_text("Choose a session")
            screenshots(page, "history-empty")
    finally:
        empty.stop()


# -- Record ---------------------------------------------------------------------------------------


def test_record_and_stop_shows_the_transcript(page, ui_server):
    page.goto("/#record")
    screenshots(page, "record-idle")
    page.get_by_role("button", name="Start recording").click()
    stop = page.get_by_role("button", name="Stop recording")
    expect(stop).to_be_visible()
    # the level meter follows the (fake) microphone
    page.wait_for_function(
        "parseFloat(document.querySelector('#record-meter').style.getPropertyValue('--level')) > 0.2"
    )
    page.wait_for_timeout(6500)
    assert page.locator("#record-clock").inner_text() in ("0:06", "0:07", "0:08")
    stop.click()
    result = page.locator("#record-result article.result")
    expect(result).to_be_visible(timeout=60_000)
    text = words(result.locator(".transcript").inner_text())
    assert "apostle" in text and "middle classes" in text, text
    session_id = result.get_attribute("data-session-id")
    stored = api(ui_server, "GET", f"/session/{session_id}").json()
    assert stored["source"] == "recording" and stored["status"]["status"] == "done"
    assert "apostle" in words(stored["transcription"]["text"])
    screenshots(page, "record")


# -- Upload ---------------------------------------------------------------------------------------

WATCH_CARDS = """() => {
  window.cardStates = {};
  const seen = (card) => {
    const name = card.querySelector('.file-name')?.textContent;
    if (!name) return;
    const states = (window.cardStates[name] ||= []);
    if (states[states.length - 1] !== card.dataset.state) states.push(card.dataset.state);
  };
  new MutationObserver((records) => {
    for (const record of records) {
      const card = record.target.closest?.('.upload-card');
      if (card) seen(card);
      for (const node of record.addedNodes || []) if (node.classList?.contains('upload-card')) seen(node);
    }
  }).observe(document.querySelector('#upload-list'),
             { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
}"""


def test_upload_two_files_shows_progress_and_transcripts(page, ui_server):
    page.goto("/#upload")
    page.evaluate(WATCH_CARDS)
    page.set_input_files("#upload-input", [audio_file("jfk.flac"), audio_file("acoustic_corpus.wav")])
    cards = page.locator(".upload-card")
    expect(cards).to_have_count(2)
    expect(page.locator(".upload-card[data-state=done]")).to_have_count(2, timeout=180_000)

    jfk = page.locator(".upload-card", has_text="jfk.flac")
    corpus = page.locator(".upload-card", has_text="acoustic_corpus.wav")
    assert "ask not what your country can do for you" in words(jfk.locator(".transcript").inner_text())
    corpus_text = words(corpus.locator(".transcript").inner_text())
    assert "acoustic corpus" in corpus_text and "intensity" in corpus_text
    assert corpus.locator(".segment").count() >= 4  # shown segment by segment, with their times
    expect(corpus.locator(".segment-time").first).to_have_text("0:00")

    states = page.evaluate("window.cardStates")
    for name in ("jfk.flac", "acoustic_corpus.wav"):
        assert states[name][0] in ("waiting", "uploading") and states[name][-1] == "done", states
        assert "uploading" in states[name], states
        assert {"queued", "processing"} & set(states[name]), states
    for card in (jfk, corpus):
        expect(card.get_by_role("link", name="Open in History")).to_be_visible()
        session_id = card.get_attribute("data-session-id")
        assert api(ui_server, "GET", f"/session/{session_id}").json()["status"]["status"] == "done"
    screenshots(page, "upload")


DROP_FILE = """([name, base64]) => {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: 'audio/wav' }));
  const zone = document.querySelector('#dropzone');
  zone.dispatchEvent(new DragEvent('dragenter', { bubbles: true, cancelable: true, dataTransfer: transfer }));
  const highlighted = zone.classList.contains('is-dragging');
  zone.dispatchEvent(new DragEvent('dragover', { bubbles: true, cancelable: true, dataTransfer: transfer }));
  zone.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: transfer }));
  return highlighted && !zone.classList.contains('is-dragging');
}"""


def test_drop_a_file_on_the_upload_tab(page, ui_server):
    page.goto("/#upload")
    wav = base64.b64encode(audio_file("speechbrain_spk1_snt1.wav").read_bytes()).decode()
    assert page.evaluate(DROP_FILE, ["dropped.wav", wav])
    card = page.locator(".upload-card", has_text="dropped.wav")
    expect(card).to_have_attribute("data-state", "done", timeout=60_000)
    session_id = card.get_attribute("data-session-id")
    stored = api(ui_server, "GET", f"/session/{session_id}").json()
    assert stored["original_filename"] == "dropped.wav"
    expect(card.locator(".transcript")).to_have_text(
        re.compile(re.escape(stored["transcription"]["segments"][0]["text"].strip()))
    )


def test_an_undecodable_upload_shows_the_servers_message(page, ui_server):
    page.goto("/#upload")
    page.set_input_files(
        "#upload-input",
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"these are not audio bytes " * 50}],
    )
    card = page.locator(".upload-card", has_text="notes.txt")
    expect(card).to_have_attribute("data-state", "error")
    session_id = card.get_attribute("data-session-id")
    stored = api(ui_server, "GET", f"/session/{session_id}").json()
    assert stored["status"]["status"] == "error"
    expect(card.get_by_role("alert")).to_contain_text(stored["status"]["message"])
    expect(card.get_by_role("link", name="Open in History")).to_be_visible()
    screenshots(page, "upload-error")
    # shown in History with its message, and it can be deleted from there
    card.get_by_role("link", name="Open in History").click()
    view = page.locator("#session-view")
    expect(view.get_by_role("alert")).to_contain_text(stored["status"]["message"])
    expect(view.get_by_role("button", name="Retry")).to_be_visible()
    view.locator(".status-box").get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Delete for good").click()
    expect(page.locator(f'.session-row[data-id="{session_id}"]')).to_have_count(0)
    assert not (ui_server.data_dir / "sessions" / session_id).exists()


# -- History --------------------------------------------------------------------------------------


def test_history_lists_sessions_and_search_seeks_the_player(page, ui_server):
    for title, name in (("jfk", "jfk.flac"), ("acoustic_corpus", "acoustic_corpus.wav")):
        if session_titled(ui_server, title) is None:  # when run on its own
            upload_via_api(ui_server, name)
    listing = api(ui_server, "GET", "/sessions", params={"limit": 500}).json()

    page.goto("/#history")
    rows = page.locator(".session-row")
    expect(rows).to_have_count(listing["total"])
    # newest first, as the server lists them
    assert [row.get_attribute("data-id") for row in rows.all()] == [s["id"] for s in listing["sessions"]]
    storage = listing["storage"]
    summary = page.locator("#storage-summary")
    expect(summary).to_contain_text(f"{storage['session_count']} sessions")
    expect(summary).to_contain_text("used")
    assert summary.get_attribute("title") == f"{storage['total_bytes']:,} bytes on the server"
    jfk = next(s for s in listing["sessions"] if s["title"] == "jfk")
    jfk_row = page.locator(f'.session-row[data-id="{jfk["id"]}"]')
    expect(jfk_row).to_contain_text("jfk")
    expect(jfk_row).to_contain_text("0:11")
    expect(jfk_row).to_contain_text("Upload")
    expect(jfk_row).to_contain_text("Done")
    expect(jfk_row).to_contain_text(format_bytes(jfk["size_bytes"]))
    screenshots(page, "history")

    hits = api(ui_server, "GET", "/search", params={"q": "intensity"}).json()["results"]
    target = hits[0]["segments"][0]
    assert target["start"] > 5  # a segment well into the recording, so the seek is visible
    page.fill("#search-input", "intensity")
    hit = page.locator(".hit", has_text="intensity")
    expect(hit).to_have_count(1)
    expect(hit.locator("mark")).to_have_text("intensity")
    screenshots(page, "search")
    hit.click()

    corpus_id = hits[0]["id"]
    expect(page).to_have_url(re.compile(f"#history/{corpus_id}$"))
    view = page.locator("#session-view")
    expect(view.locator("h2")).to_have_text("acoustic_corpus")
    page.wait_for_function(
        "start => Math.abs(document.querySelector('#session-view audio').currentTime - start) < 0.25",
        arg=target["start"],
    )
    expect(view.locator(".segment.is-current")).to_contain_text("intensity")

    # clicking a segment seeks there and plays; the highlighted segment follows the audio
    segments = api(ui_server, "GET", f"/session/{corpus_id}").json()["transcription"]["segments"]
    last = segments[-1]
    view.locator(".segment").nth(len(segments) - 1).locator(".segment-body").click()
    page.wait_for_function(
        "start => document.querySelector('#session-view audio').currentTime >= start - 0.25", arg=last["start"]
    )
    expect(view.locator(".segment.is-current")).to_contain_text(last["text"].strip())
    page.evaluate("document.querySelector('#session-view audio').pause()")
    expect(view.get_by_role("link", name="Audio")).to_have_attribute(
        "href", f"/session/{corpus_id}/audio?download=true"
    )
    for fmt in ("txt", "srt", "vtt", "json"):
        link = view.locator(f'a[href="/session/{corpus_id}/export/{fmt}"]')
        expect(link).to_have_count(1)
        assert api(ui_server, "GET", link.get_attribute("href")).status_code == 200
    screenshots(page, "session")
    page.emulate_media(color_scheme="dark")
    screenshots(page, "session-dark")
    page.emulate_media(color_scheme="light")

    page.fill("#search-input", "zebra")
    expect(page.locator("#search-results")).to_contain_text("No transcript contains “zebra”")


def test_rename_and_delete(page, ui_server):
    session_id = upload_via_api(ui_server, "goforward.wav")
    page.goto(f"/#history/{session_id}")
    view = page.locator("#session-view")
    expect(view.locator("h2")).to_have_text("goforward")
    expect(view.locator(".transcript")).to_contain_text("forward")

    view.get_by_role("button", name="Rename").click()
    title_input = view.get_by_role("textbox", name="New title")
    expect(title_input).to_be_focused()
    title_input.fill("Directions for the robot")
    title_input.press("Enter")
    expect(view.locator("h2")).to_have_text("Directions for the robot")
    expect(page.locator(f'.session-row[data-id="{session_id}"]')).to_contain_text("Directions for the robot")
    assert api(ui_server, "GET", f"/session/{session_id}").json()["title"] == "Directions for the robot"

    size = api(ui_server, "GET", f"/session/{session_id}").json()["size_bytes"]
    delete = view.locator(".session-actions").get_by_role("button", name="Delete")
    delete.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("the audio file (goforward.wav)")
    expect(dialog).to_contain_text("the transcript (1 segment)")
    expect(dialog).to_contain_text(f"{size:,} bytes")
    screenshots(page, "delete-dialog")
    page.keyboard.press("Escape")  # cancelling keeps it
    expect(dialog).to_have_count(0)
    assert (ui_server.data_dir / "sessions" / session_id).is_dir()

    delete.click()
    page.get_by_role("button", name="Delete for good").click()
    expect(page.locator(f'.session-row[data-id="{session_id}"]')).to_have_count(0)
    expect(page).to_have_url(re.compile("#history$"))
    assert not (ui_server.data_dir / "sessions" / session_id).exists()
    assert api(ui_server, "GET", f"/session/{session_id}").status_code == 404


# -- Reload ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory) -> Path:
    """About two minutes of real speech, so a reload lands while it is being transcribed."""
    silence = np.zeros(8000, dtype=np.float32)
    pieces = [piece for name in ENGLISH_FILES for piece in (read_pcm(audio_file(name)), silence)]
    return write_wav(tmp_path_factory.mktemp("ui-audio") / "two_minutes.wav", np.concatenate(pieces))


def test_reload_mid_transcription_shows_the_servers_state(page, ui_server, long_speech):
    page.goto("/#upload")
    page.set_input_files("#upload-input", [long_speech])
    card = page.locator(".upload-card", has_text="two_minutes.wav")
    expect(card).to_have_attribute("data-state", "processing", timeout=60_000)
    session_id = card.get_attribute("data-session-id")

    page.reload()
    expect(page).to_have_url(re.compile("#upload$"))
    expect(page.get_by_role("tab", name="Upload")).to_have_attribute("aria-selected", "true")
    card = page.locator(f'.upload-card[data-session-id="{session_id}"]')
    expect(card).to_be_visible()  # the server still has it running, so the card comes back
    assert card.get_attribute("data-state") in ("queued", "processing", "done")
    expect(card).to_have_attribute("data-state", "done", timeout=180_000)
    expect(card.locator(".transcript")).to_contain_text("fellow Americans")

    page.get_by_role("tab", name="History").click()
    listing = api(ui_server, "GET", "/sessions", params={"limit": 500}).json()
    expect(page.locator(".session-row")).to_have_count(listing["total"])
    expect(page.locator(f'.session-row[data-id="{session_id}"]')).to_contain_text("Done")
    page.reload()
    expect(page.get_by_role("tab", name="History")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".session-row")).to_have_count(listing["total"])


def test_cancel_and_continue_from_history(page, ui_server, long_speech):
    with long_speech.open("rb") as handle:
        session_id = api(ui_server, "POST", "/transcribe-file", files={"file": ("cancel_me.wav", handle)}).json()[
            "session_id"
        ]
    page.goto(f"/#history/{session_id}")
    view = page.locator("#session-view")
    expect(view.locator(".status-box")).to_contain_text("Transcribing", timeout=60_000)
    view.locator(".status-box").get_by_role("button", name="Cancel").click()
    expect(view.locator(".status-box")).to_contain_text("Cancelled", timeout=20_000)
    stored = api(ui_server, "GET", f"/session/{session_id}").json()
    assert stored["status"]["status"] == "cancelled"
    kept = len(stored["transcription"]["segments"]) if stored["transcription"] else 0
    expect(view.locator(".segment")).to_have_count(kept)  # the segments so far are kept and shown
    expect(page.locator(f'.session-row[data-id="{session_id}"]')).to_contain_text("Cancelled")

    view.get_by_role("button", name="Continue transcribing").click()
    expect(view.locator(".status-box")).to_contain_text(re.compile("Queued|Transcribing"))
    expect(page.locator(f'.session-row[data-id="{session_id}"] .row-progress')).to_be_visible()
    screenshots(page, "session-processing")
    expect(view.locator(".status-box")).to_be_empty(timeout=180_000)
    done = api(ui_server, "GET", f"/session/{session_id}").json()
    assert done["status"]["status"] == "done"
    expect(view.locator(".segment")).to_have_count(len(done["transcription"]["segments"]))
    expect(view.locator(".transcript")).to_contain_text("fellow Americans")
    expect(page.locator(f'.session-row[data-id="{session_id}"]')).to_contain_text("Done")


def test_reload_mid_upload_loses_nothing_the_server_has(page, ui_server, long_speech):
    before = api(ui_server, "GET", "/sessions").json()["total"]
    page.goto("/#upload")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 256 * 1024},
    )
    page.set_input_files("#upload-input", [long_speech])
    card = page.locator(".upload-card", has_text="two_minutes.wav")
    expect(card).to_have_attribute("data-state", "uploading")
    page.wait_for_function("document.querySelector('.upload-card progress').value > 0.05")
    page.reload()
    notice = page.locator(".upload-interrupted")
    expect(notice).to_contain_text("two_minutes.wav")
    expect(notice).to_contain_text("Choose it again")
    screenshots(page, "upload-interrupted")
    # the server kept nothing half-received and lists exactly what it had
    deadline = time.monotonic() + 10
    while any((ui_server.data_dir / "incoming").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any((ui_server.data_dir / "incoming").iterdir())
    assert api(ui_server, "GET", "/sessions").json()["total"] == before


# -- Live -----------------------------------------------------------------------------------------


def test_live_captions_from_the_microphone(page, ui_server):
    page.goto("/#live")
    page.get_by_role("button", name="Start live captions").click()
    captions = page.locator("#live-captions")
    expect(captions).to_contain_text(re.compile("apostle|middle class", re.I), timeout=40_000)
    # text that may still change is shown differently (grey italic)
    draft = captions.locator(".caption.draft").first
    expect(draft).to_be_visible()
    assert draft.evaluate("el => getComputedStyle(el).fontStyle") == "italic"
    # MediaRecorder slices stream over /ws/live as they are recorded
    expect(page.locator("#live-status")).to_contain_text(
        re.compile(r"[2-9] chunks sent|\d\d+ chunks sent"), timeout=30_000
    )
    screenshots(page, "live")
    page.get_by_role("button", name="Stop live captions").click()
    expect(page.locator("#live-status")).to_contain_text("Stopped", timeout=60_000)
    link = page.locator("#live-footer").get_by_role("link", name="Open in History")
    session_id = link.get_attribute("href").rsplit("/", 1)[1]
    chunks = sorted(p.name for p in (ui_server.data_dir / "sessions" / session_id).glob("chunk_*.webm"))
    assert len(chunks) >= 3
    assert chunks == sorted(f"chunk_{n}.webm" for n in range(len(chunks)))  # sent in order, none lost
    stored = api(ui_server, "GET", f"/session/{session_id}").json()
    assert stored["source"] == "live" and "apostle" in words(stored["transcription"]["text"])
    # the stream ended as a whole recording, its live draft kept as a version for the second pass
    directory = ui_server.data_dir / "sessions" / session_id
    assert (directory / "original_audio.webm").read_bytes() == b"".join(
        (directory / name).read_bytes() for name in sorted(chunks, key=lambda name: int(name[6:-5]))
    )
    labels = [v["label"] for v in api(ui_server, "GET", f"/session/{session_id}/versions").json()["versions"]]
    assert labels == ["live-draft"]


# -- Keyboard -------------------------------------------------------------------------------------


def test_keyboard_alone(page, ui_server):
    upload_via_api(ui_server, "jfk.flac")  # a row in History to open, whichever tests ran before
    page.goto("/#record")
    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    record_tab = page.get_by_role("tab", name="Record")
    expect(record_tab).to_be_focused()
    assert record_tab.evaluate("el => getComputedStyle(el).outlineStyle") != "none"  # focus is visible
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Upload")).to_be_focused()
    expect(page.get_by_role("tab", name="Upload")).to_have_attribute("aria-selected", "true")
    expect(page).to_have_url(re.compile("#upload$"))
    expect(page.locator("#panel-upload")).to_be_visible()
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="History")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-record")).to_be_hidden()
    first_row = page.locator(".session-row").first
    expect(first_row).to_be_visible(timeout=15_000)  # on 2 busy cores CI once waited past the default 5 s
    first_row.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#session-view h2")).to_be_focused()
    expect(page).to_have_url(re.compile(f"#history/{first_row.get_attribute('data-id')}$"))


# -- Models, languages, corrections and versions ------------------------------------------------


def open_session(page, session_id: str):
    page.goto(f"/#history/{session_id}")
    view = page.locator("#session-view")
    expect(view.locator(".model-facts")).to_be_visible()
    return view


def versions_of(server, session_id: str) -> list[dict]:
    return api(server, "GET", f"/session/{session_id}/versions").json()["versions"]


def test_upload_in_german_with_auto_shows_the_detected_language(page, ui_server):
    """Nothing chosen: the server detects German and routes it to the multilingual model."""
    page.goto("/#upload")
    choice = page.locator("#upload-choice")
    expect(choice.get_by_label("Model", exact=True)).to_have_value("")
    expect(choice.get_by_label("Language", exact=True)).to_have_value("")
    expect(choice.locator("option[value=base]")).to_have_text("base")  # filled from GET /models
    expect(choice.locator("option[value='tiny.en']")).to_have_text("tiny.en (English only)")
    page.set_input_files("#upload-input", [audio_file("leopard_test_de.wav")])
    card = page.locator(".upload-card", has_text="leopard_test_de.wav")
    expect(card).to_have_attribute("data-state", "done", timeout=120_000)
    assert "hinter diesem" in words(card.locator(".transcript").inner_text())
    session_id = card.get_attribute("data-session-id")
    stored = api(ui_server, "GET", f"/session/{session_id}").json()
    assert (stored["model"], stored["detected_language"]) == ("base", "de"), stored

    card.get_by_role("link", name="Open in History").click()
    facts = page.locator("#session-view .model-facts")
    expect(facts).to_contain_text("base")
    expect(facts).to_contain_text(stored["model_reason"])
    percent = round(stored["detected_language_probability"] * 100)
    expect(facts.locator("dd")).to_have_text(
        [f"base · {stored['model_reason']}", f"German ({percent}% sure)", "German"]
    )
    text = words(page.locator("#session-view .transcript").inner_text())
    assert "raum" in text and "genutzt" in text, text
    expect(page.locator("#session-view .language-warning")).to_be_empty()
    screenshots(page, "session-language")


def test_an_english_only_model_for_another_language_shows_the_servers_refusal(page, ui_server):
    before = api(ui_server, "GET", "/sessions").json()["total"]
    page.goto("/#upload")
    choice = page.locator("#upload-choice")
    expect(choice.locator("option[value='tiny.en']")).to_be_attached()
    choice.get_by_label("Model", exact=True).select_option("tiny.en")
    choice.get_by_label("Language", exact=True).select_option("de")
    expect(choice.locator(".choice-hint")).to_contain_text("tiny.en writes English only")
    page.set_input_files("#upload-input", [audio_file("leopard_test_de.wav")])
    card = page.locator(".upload-card", has_text="leopard_test_de.wav")
    expect(card).to_have_attribute("data-state", "error")
    expect(card.get_by_role("alert")).to_contain_text("'tiny.en' is English-only and cannot transcribe language 'de'")
    assert card.get_attribute("data-session-id") is None
    assert api(ui_server, "GET", "/sessions").json()["total"] == before  # refused before anything was kept
    screenshots(page, "upload-refused")


def test_record_and_live_send_the_chosen_model_and_language(page, ui_server):
    """Both send what was chosen (the server refuses tiny.en for German, and the page says so)."""
    refusal = "'tiny.en' is English-only and cannot transcribe language 'de'"
    before = api(ui_server, "GET", "/sessions").json()["total"]
    for tab, start, stop in (("record", "Start recording", "Stop recording"), ("live", "Start live captions", None)):
        page.goto(f"/#{tab}")
        choice = page.locator(f"#{tab}-choice")
        expect(choice.locator("option[value='tiny.en']")).to_be_attached()
        choice.get_by_label("Model", exact=True).select_option("tiny.en")
        choice.get_by_label("Language", exact=True).select_option("de")
        page.get_by_role("button", name=start).click()
        if stop:
            page.wait_for_timeout(1500)
            page.get_by_role("button", name=stop).click()
            expect(page.locator("#record-result").get_by_role("alert")).to_contain_text(refusal)
        else:
            expect(page.locator("#live-footer").get_by_role("alert")).to_contain_text(refusal)
        expect(page.get_by_role("button", name=start)).to_be_enabled()
    assert api(ui_server, "GET", "/sessions").json()["total"] == before  # refused before anything was kept


def test_retranscribe_with_another_model_keeps_a_version(page, ui_server):
    session_id = upload_via_api(ui_server, "speechbrain_spk1_snt1.wav")
    first = api(ui_server, "GET", f"/session/{session_id}").json()
    assert first["model"] == "tiny.en"
    view = open_session(page, session_id)
    expect(view.locator(".versions")).to_contain_text("None yet")
    view.locator(".retranscribe summary").click()
    form = view.locator(".retranscribe")
    form.get_by_label("Model", exact=True).select_option("base")
    form.get_by_label("Language", exact=True).select_option("en")
    screenshots(page, "retranscribe")
    form.get_by_role("button", name="Retranscribe").click()

    expect(view.locator(".model-facts dd").first).to_have_text("base · chosen in the request", timeout=120_000)
    expect(view.locator(".version")).to_have_count(1)
    expect(view.locator(".version")).to_contain_text("Before retranscription")
    stored = api(ui_server, "GET", f"/session/{session_id}").json()
    assert stored["status"]["status"] == "done" and stored["model"] == "base"
    expect(view.locator(".transcript").first).to_contain_text(stored["transcription"]["segments"][0]["text"].strip())
    assert "child" in words(stored["transcription"]["text"]), stored["transcription"]["text"]
    [version] = versions_of(ui_server, session_id)
    assert version["label"] == "before-retranscribe" and version["preview"] == first["transcription"]["text"]


def test_edit_a_segment_in_place_and_read_the_version_before_it(page, ui_server):
    session_id = upload_via_api(ui_server, "goforward.wav")
    original = api(ui_server, "GET", f"/session/{session_id}").json()["transcription"]["segments"][0]["text"].strip()
    view = open_session(page, session_id)
    segment = view.locator(".transcript .segment").first

    # Escape puts the text back and keeps no version
    segment.get_by_role("button", name="Edit the text at 0:00").click()
    field = segment.get_by_role("textbox")
    expect(field).to_be_focused()
    field.fill("not this")
    field.press("Escape")
    expect(segment.locator(".segment-text")).to_have_text(original)
    assert versions_of(ui_server, session_id) == []

    # Enter saves
    segment.get_by_role("button", name="Edit the text at 0:00").click()
    field.fill("Go forward ten metres, corrected by hand.")
    screenshots(page, "segment-edit")
    field.press("Enter")
    expect(segment.locator(".segment-text")).to_have_text("Go forward ten metres, corrected by hand.")
    stored = api(ui_server, "GET", f"/session/{session_id}").json()["transcription"]
    assert stored["segments"][0]["text"].strip() == "Go forward ten metres, corrected by hand."
    [version] = versions_of(ui_server, session_id)
    assert version["label"] == "before-edit"
    expect(view.locator(".version")).to_contain_text("Before an edit")

    # leaving the field saves too
    segment.get_by_role("button", name="Edit the text at 0:00").click()
    field.fill("Go forward ten metres.")
    view.locator(".session-title").click()
    expect(segment.locator(".segment-text")).to_have_text("Go forward ten metres.")
    expect(view.locator(".version")).to_have_count(2)

    # the earliest version reads as it was, read only
    view.get_by_role("button", name="View version 1").click()
    viewer = view.locator(".version-view")
    expect(viewer).to_contain_text("Version 1 · Before an edit")
    expect(viewer.locator(".segment-text").first).to_have_text(original)
    expect(viewer.locator("textarea, .segment-edit")).to_have_count(0)
    screenshots(page, "versions")


def test_an_english_only_model_on_german_warns_and_one_click_fixes_it(page, ui_server):
    """tiny.en chosen in the upload form with the language left on Auto (the server allows it): the
    language is still detected, the page warns, and one click transcribes it again with base in German."""
    page.goto("/#upload")
    choice = page.locator("#upload-choice")
    expect(choice.locator("option[value='tiny.en']")).to_be_attached()
    choice.get_by_label("Model", exact=True).select_option("tiny.en")
    page.set_input_files("#upload-input", [audio_file("leopard_test_de.wav")])
    card = page.locator(".upload-card", has_text="leopard_test_de.wav")
    expect(card).to_have_attribute("data-state", "done", timeout=120_000)
    session_id = card.get_attribute("data-session-id")
    stored = api(ui_server, "GET", f"/session/{session_id}").json()
    assert stored["model"] == "tiny.en" and stored["detected_language"] == "de", stored
    assert stored["detected_language_probability"] >= 0.5 and stored["language"] == "en"
    assert "genutzt" not in words(stored["transcription"]["text"])

    view = open_session(page, session_id)
    warning = view.locator(".language-warning")
    expect(warning).to_contain_text("sounds like German")
    expect(warning).to_contain_text("tiny.en writes English only")
    screenshots(page, "english-only-warning")
    warning.get_by_role("button", name="Retranscribe with base (German)").click()

    expect(view.locator(".model-facts dd").first).to_have_text("base · chosen in the request", timeout=120_000)
    expect(warning).to_be_empty()
    expect(view.locator(".transcript").first).to_contain_text("genutzt")
    fixed = api(ui_server, "GET", f"/session/{session_id}").json()
    assert (fixed["model"], fixed["language"]) == ("base", "de") and fixed["status"]["status"] == "done"
    assert "hinter diesem" in words(fixed["transcription"]["text"])
    assert [v["label"] for v in versions_of(ui_server, session_id)] == ["before-retranscribe"]


def test_the_upload_card_warns_as_history_does_when_an_english_only_model_hears_spanish(page, browser, ui_server):
    """The card said Done over English nonsense; only History warned. Now the card shows History's
    warning, word for word, and its one click transcribes the file again in Spanish, followed on the card."""
    page.goto("/#upload")
    choice = page.locator("#upload-choice")
    expect(choice.locator("option[value='tiny.en']")).to_be_attached()
    choice.get_by_label("Model", exact=True).select_option("tiny.en")
    page.set_input_files("#upload-input", [audio_file("leopard_test_es.wav")])
    card = page.locator(".upload-card", has_text="leopard_test_es.wav")
    expect(card).to_have_attribute("data-state", "done", timeout=120_000)
    warning = card.locator(".language-warning")
    expect(warning).to_contain_text("sounds like Spanish", timeout=30_000)
    expect(warning).to_contain_text("tiny.en writes English only, so this transcript is probably wrong")
    session_id = card.get_attribute("data-session-id")
    stored = api(ui_server, "GET", f"/session/{session_id}").json()
    assert (stored["model"], stored["detected_language"]) == ("tiny.en", "es"), stored
    on_card = words(warning.inner_text())
    screenshots(page, "upload-english-only-warning")

    with page_of(browser, ui_server) as other:  # History, in another tab, says the same
        view = open_session(other, session_id)
        expect(view.locator(".language-warning")).to_contain_text("sounds like Spanish")
        assert words(view.locator(".language-warning").inner_text()) == on_card

    card.locator(".language-warning").get_by_role("button", name="Retranscribe with base (Spanish)").click()
    expect(card.locator(".language-warning")).to_be_empty()
    expect(card.locator(".transcript")).to_contain_text("blanquecinas", timeout=120_000)
    expect(card).to_have_attribute("data-state", "done", timeout=120_000)
    fixed = api(ui_server, "GET", f"/session/{card.get_attribute('data-session-id')}").json()
    assert (fixed["model"], fixed["language"]) == ("base", "es") and fixed["status"]["status"] == "done"


def test_the_record_result_warns_when_an_english_only_model_hears_spanish(browser, ui_server):
    """A recording in Spanish (the fake microphone plays leopard_test_es.wav) with tiny.en chosen."""
    spanish = browser.browser_type.launch(
        executable_path=str(CHROMIUM), args=chromium_args("leopard_test_es.wav"), env=chromium_env()
    )
    try:
        with page_of(spanish, ui_server) as page:
            page.goto("/#record")
            choice = page.locator("#record-choice")
            expect(choice.locator("option[value='tiny.en']")).to_be_attached()
            choice.get_by_label("Model", exact=True).select_option("tiny.en")
            page.get_by_role("button", name="Start recording").click()
            page.wait_for_timeout(8000)
            page.get_by_role("button", name="Stop recording").click()
            result = page.locator("#record-result article.result")
            expect(result).to_be_visible(timeout=60_000)
            warning = result.locator(".language-warning")
            expect(warning).to_contain_text("sounds like Spanish", timeout=30_000)
            expect(warning).to_contain_text("tiny.en writes English only")
            session_id = result.get_attribute("data-session-id")
            warning.get_by_role("button", name="Retranscribe with base (Spanish)").click()
            expect(page).to_have_url(re.compile(f"#history/{session_id}$"))
            view = page.locator("#session-view")
            expect(view.locator(".model-facts dd").first).to_have_text("base · chosen in the request", timeout=120_000)
    finally:
        spanish.close()


# -- Signing in, when the server has a key ----------------------------------------------------------


def test_sign_in_with_the_key_and_back_out(browser, tmp_path_factory):
    keyed = make_server(tmp_path_factory, "ui-keyed", TAPESCRIBE_API_KEY="open sesame", TAPESCRIBE_WORKERS=0).start()
    context = browser.new_context(base_url=keyed.url, viewport=DESKTOP)
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.goto("/#history")
        expect(page).to_have_url(re.compile(r"/login(#.*)?$"))
        page.get_by_label("Key").fill("not the key")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("That key is not right")
        screenshots(page, "login")

        page.get_by_label("Key").fill("open sesame")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("tab", name="History")).to_be_visible()
        cookie = next(c for c in context.cookies() if c["name"] == "tapescribe_login")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and "open sesame" not in cookie["value"]
        page.goto("/#history")
        expect(page.locator("#history-message")).to_contain_text("No sessions yet")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()

        # A login that is gone (cleared, expired, key changed): the next request leads back to the login page.
        context.clear_cookies()
        page.get_by_role("tab", name="Upload").click()
        page.get_by_role("tab", name="History").click()
        expect(page).to_have_url(re.compile(r"/login(#.*)?$"))

        page.get_by_label("Key").fill("open sesame")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/login(#.*)?$"))
        assert not [c for c in context.cookies() if c["name"] == "tapescribe_login"]
    finally:
        context.close()
        keyed.stop()


# -- The library: tags, several sessions at once, restoring a version (library.js) ------------------


def test_tag_a_session_and_filter_history_by_tag(page, ui_server):
    tagged, other = upload_via_api(ui_server, "goforward.wav"), upload_via_api(ui_server, "jfk.flac")
    view = open_session(page, tagged)
    editor = view.locator(".tag-editor")
    editor.get_by_role("textbox", name="Add a tag").fill("Robots, field notes")
    editor.get_by_role("button", name="Add").click()
    expect(editor.locator(".tag")).to_have_text(["robots×", "field notes×"])
    assert api(ui_server, "GET", f"/session/{tagged}").json()["tags"] == ["robots", "field notes"]
    editor.get_by_role("textbox", name="Add a tag").fill("no!")
    editor.get_by_role("button", name="Add").click()
    expect(editor.locator(".field-error")).to_contain_text("A tag may hold")  # the server's message

    row = page.locator(f'.session-row[data-id="{tagged}"]')
    expect(row.locator(".tag")).to_have_text(["robots", "field notes"])
    expect(page.locator(f'.session-row[data-id="{other}"] .row-preview')).to_contain_text("fellow Americans")
    page.get_by_role("combobox", name="Show only sessions with this tag").fill("robots")
    expect(page.locator(".session-row")).to_have_count(1)
    expect(row).to_be_visible()
    screenshots(page, "tags")
    editor.get_by_role("button", name="Remove tag robots").click()
    expect(editor.locator(".tag")).to_have_text(["field notes×"])
    expect(page.locator(".session-row")).to_have_count(0)
    assert api(ui_server, "GET", f"/session/{tagged}").json()["tags"] == ["field notes"]


def test_select_several_sessions_in_history_and_delete_them(page, ui_server):
    ids = [upload_via_api(ui_server, "goforward.wav") for _ in range(2)]
    kept = upload_via_api(ui_server, "goforward.wav")
    page.goto("/#history")
    page.get_by_role("button", name="Select").click()
    bar = page.locator("#bulk-bar")
    expect(bar).to_contain_text("0 selected")
    for session_id in ids:
        page.locator(f'.row-select[data-id="{session_id}"]').check()
    expect(bar).to_contain_text("2 selected")
    bar.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete 2 sessions?")
    dialog.get_by_role("button", name="Delete").click()
    for session_id in ids:
        expect(page.locator(f'.session-row[data-id="{session_id}"]')).to_have_count(0)
        assert api(ui_server, "GET", f"/session/{session_id}").status_code == 404
    expect(page.locator(f'.session-row[data-id="{kept}"]')).to_be_visible()
    expect(bar).to_contain_text("0 selected")


def test_restore_an_earlier_version_from_the_page(page, ui_server):
    session_id = upload_via_api(ui_server, "goforward.wav")
    original = api(ui_server, "GET", f"/session/{session_id}").json()["transcription"]["segments"][0]["text"].strip()
    edited = api(ui_server, "PATCH", f"/session/{session_id}/segments/0", json={"text": "Typed over by mistake."})
    assert edited.status_code == 200
    view = open_session(page, session_id)
    expect(view.locator(".transcript .segment-text").first).to_have_text("Typed over by mistake.")
    view.get_by_role("button", name="Restore version 1").click()
    page.get_by_role("dialog").get_by_role("button", name="Restore").click()
    expect(view.locator(".transcript .segment-text").first).to_have_text(original)
    expect(view.locator(".version")).to_have_count(2)
    expect(view.locator(".version").first).to_contain_text("Before a restore")
    assert api(ui_server, "GET", f"/session/{session_id}").json()["transcription"]["segments"][0]["text"].strip() == (
        original
    )
