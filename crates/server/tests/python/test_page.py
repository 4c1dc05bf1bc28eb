"""The web chat page in headless Chromium (Debian's, driven by Playwright): it loads, lists
the models, streams a reply, shows the speed, and the stop button aborts a generation.
Skipped, saying so, when no Chromium is installed."""

import os
import shutil

import pytest

from conftest import ARTIFACTS, MODEL

CHROMIUM = os.environ.get("SLM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (apt-get install chromium, or set SLM_CHROMIUM); the web page test is skipped",
)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_page_streams_a_reply_and_stops(server, browser):
    page = browser.new_page()
    page.goto(server.base + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length === 2")
    assert page.locator("#model").input_value() == MODEL
    page.fill("#input", "Say hello in one short sentence.")
    page.click("#send")
    page.wait_for_selector("#send:enabled", timeout=60_000)
    reply = page.locator(".msg.assistant").last.inner_text()
    assert reply.strip(), "the reply was streamed into the page"
    assert "tokens/s" in page.locator("#status").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-reply.png"))

    page.fill("#input", "Write a very long story about a lighthouse keeper.")
    page.click("#send")
    page.wait_for_function(
        "document.querySelector('.msg.assistant:last-child') && "
        "document.querySelector('.msg.assistant:last-child').textContent.length > 20",
        timeout=60_000,
    )
    page.click("#stop")
    page.wait_for_selector("#send:enabled", timeout=10_000)
    assert "stopped" in page.locator("#status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "page-stopped.png"))
    # The aborted fetch closed the stream: the server cancels the generation.
    server.wait_idle(timeout=10)
    page.close()


def test_page_works_with_an_api_key(fresh, browser):
    server = fresh("page-keyed", flags=("--api-key", "pagekey"))
    page = browser.new_page()
    page.goto(server.base + "/")
    page.wait_for_function("document.querySelector('#status').textContent.includes('API key')")
    page.fill("#key", "pagekey")
    page.dispatch_event("#key", "change")
    page.wait_for_function("document.querySelectorAll('#model option').length === 1")
    assert page.evaluate("localStorage.getItem('slm.apiKey')") == "pagekey"
    page.fill("#input", "Hi")
    page.click("#send")
    page.wait_for_selector("#send:enabled", timeout=60_000)
    assert page.locator(".msg.assistant").count() == 1
    assert page.locator(".msg.error").count() == 0
    page.close()
