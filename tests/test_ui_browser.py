"""The chat page end to end: the real Bot (index and model), served on a loopback port, driven by
Debian's Chromium through Playwright. Screenshots of each state go to tests/artifacts/.

Run with: pytest -m browser tests/test_ui_browser.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import free_port

from rag.settings import Settings

# gradio's queue calls pandas APIs that pandas 3 deprecates, once per event; not ours to fix.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.real_model,
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting:Warning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:Warning"),
]

CHROMIUM = Path("/usr/bin/chromium")
# Playwright cannot download its own browser here; Debian's runs headless with these switches, and
# none of them lets it reach the network on its own.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
REVIEW = "Pakistan-US Strategic Partnership: A Review Paper"
FINISHED = ".pk-answered, .pk-declined, .pk-error"  # an assistant message that is no longer streaming
FIRST_ANSWER_MS = 300_000  # includes loading the index and the model
ANSWER_MS = 120_000


@pytest.fixture(scope="module")
def url():
    if not CHROMIUM.exists():
        pytest.skip("no browser at /usr/bin/chromium; install it with: apt-get install -y chromium")
    pytest.importorskip("playwright.sync_api", reason="install the test extra: pip install -e '.[test]'")
    from ui.app import build_app, serve

    app = build_app(settings=Settings.from_env())  # the real Bot, shared by both tests: the model loads once
    address, _ = serve(app, "127.0.0.1", free_port())
    yield address
    app.close()


@pytest.fixture(scope="module")
def browser(url):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _ask(page, question: str, timeout: float = ANSWER_MS):
    """Type a question, press Enter, and wait until its answer has finished streaming; returns it."""
    box = page.locator("#pk-question textarea")
    box.wait_for(state="visible")
    page.wait_for_function("() => !document.querySelector('#pk-question textarea').disabled", timeout=timeout)
    done = page.locator(FINISHED).count()
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(f"n => document.querySelectorAll({FINISHED!r}).length > n", arg=done, timeout=timeout)
    return _last_answer(page)


def _last_answer(page):
    answer = page.locator(FINISHED).last
    if "pk-error" in (answer.get_attribute("class") or ""):
        pytest.fail(f"the page showed an error instead of an answer: {answer.inner_text()}")
    return answer


def _open_review_citation(answer):
    """Click the [n] in the answer whose card is from the review paper; returns that card."""
    # The chat scrolls itself to the newest message 300 ms after it changes; a reader clicks later.
    answer.page.wait_for_timeout(600)
    cards = answer.locator("details.pk-card")
    assert cards.count() >= 1, "no citation card under the answer"
    for i in range(cards.count()):
        card = cards.nth(i)
        if REVIEW in card.locator(".pk-doc").inner_text():
            passage_id = card.locator(".pk-passage").get_attribute("id")
            assert not card.locator(".pk-passage").is_visible()  # collapsed until asked for
            answer.locator(f'a.pk-ref[href="#{passage_id}"]').first.click()
            return card
    pytest.fail(f"no citation from {REVIEW!r}: {[cards.nth(i).inner_text() for i in range(cards.count())]}")


def test_answer_with_sources_then_decline(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto(url)
        answer = _ask(page, "What is CSF?", timeout=FIRST_ANSWER_MS)
        assert "pk-answered" in answer.get_attribute("class"), answer.inner_text()
        assert "coalition support fund" in answer.locator(".pk-text").inner_text().lower()

        card = _open_review_citation(answer)
        page.wait_for_function("card => card.open", arg=card.element_handle())
        passage = card.locator(".pk-passage")
        assert passage.is_visible()
        assert passage.locator("mark").count() == 1  # the supporting sentence, highlighted in its passage
        page.wait_for_timeout(700)  # let the smooth scroll settle for the picture
        page.screenshot(path=str(ARTIFACTS / "ui-answered.png"))

        page.locator("#pk-settings").get_by_text("Settings and explain").click()
        explain = page.locator("#pk-explain")
        explain.get_by_text("Fused").wait_for()
        assert "Retrieval" in explain.inner_text() and "Total" in explain.inner_text()
        page.screenshot(path=str(ARTIFACTS / "ui-explain.png"), full_page=True)
        page.locator("#pk-settings").get_by_text("Settings and explain").click()

        declined = _ask(page, "Who won the 2024 US presidential election?")
        assert "pk-declined" in declined.get_attribute("class"), declined.inner_text()
        assert "Not in the documents" in declined.inner_text()
        page.screenshot(path=str(ARTIFACTS / "ui-declined.png"))
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "ui-failure-desktop.png"))
        raise
    finally:
        page.close()


def test_phone_width(browser, url):
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page.goto(url)
        page.get_by_role("button", name="What is CSF?").click()  # an example question on the empty chat
        page.wait_for_function(f"() => document.querySelectorAll({FINISHED!r}).length > 0", timeout=ANSWER_MS)
        answer = _last_answer(page)
        assert "pk-answered" in answer.get_attribute("class"), answer.inner_text()
        _open_review_citation(answer)
        page.wait_for_timeout(700)
        page.screenshot(path=str(ARTIFACTS / "ui-phone.png"))
        width, viewport = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width <= viewport, f"the page is {width}px wide on a {viewport}px screen"
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "ui-failure-phone.png"))
        raise
    finally:
        page.close()
