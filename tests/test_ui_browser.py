"""The chat page end to end, served on a loopback port and driven by Debian's Chromium through
Playwright: the real Bot with its index and model (marked real_model), and the real Bot on the fake
embedder and generator for uploading a PDF into a new collection. Screenshots of each state go to
tests/artifacts/.

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


def _need_browser() -> None:
    if not CHROMIUM.exists():
        pytest.skip("no browser at /usr/bin/chromium; install it with: apt-get install -y chromium")
    pytest.importorskip("playwright.sync_api", reason="install the test extra: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def url():
    _need_browser()
    from ui.app import build_app, serve

    app = build_app(settings=Settings.from_env())  # the real Bot, shared by both tests: the model loads once
    address, _ = serve(app, "127.0.0.1", free_port())
    yield address
    app.close()


@pytest.fixture(scope="module")
def browser():
    _need_browser()
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


@pytest.mark.real_model
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


@pytest.mark.real_model
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


# --- your own documents: a PDF uploaded into a new collection, on the fake models -------------------

OBSERVATORY_PAGES = [
    "Zarghun Observatory\n\nAnnual report of the mountain observatory near Quetta.",
    "Observations\n\nThe Zarghun observatory recorded a bright comet in March 1998. "
    "Its telescope has a mirror of two metres.",
    "Staff\n\nEleven astronomers and four engineers worked at the observatory that year.",
]


def write_pdf(path: Path) -> Path:
    """A three-page PDF with a text layer and a title in its metadata, as a word processor makes one."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Zarghun Observatory annual report")
    pdf.set_font("Helvetica", size=12)
    for text in OBSERVATORY_PAGES:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


@pytest.fixture(scope="module")
def fake_url(tmp_path_factory):
    """The page with the real Bot on the fake embedder and a generator that quotes its passages."""
    _need_browser()
    from test_ui import fake_models, make_project

    from ui.app import build_app, serve

    app = build_app(bot_factory=fake_models(), settings=make_project(tmp_path_factory.mktemp("browser-project")))
    address, _ = serve(app, "127.0.0.1", free_port())
    yield address
    app.close()


def test_upload_a_pdf_into_a_new_collection_and_cite_its_page(browser, fake_url, tmp_path):
    pytest.importorskip("fpdf", reason="install the test extra: pip install -e '.[test]'")
    pdf = write_pdf(tmp_path / "zarghun-report.pdf")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(fake_url)
        header = page.locator("#pk-header")
        header.get_by_text("3 documents").wait_for()  # the seeds of the tiny project
        page.locator("#pk-documents").get_by_text("Documents").first.click()
        page.locator("#pk-files input[type=file]").set_input_files(str(pdf))
        page.wait_for_function("() => document.querySelector('#pk-files').innerText.includes('zarghun-report')")  # uploaded to the server
        page.locator("#pk-new-name input, #pk-new-name textarea").first.fill("observatory")
        page.locator("#pk-add").click()
        log = page.locator("#pk-upload-log")
        log.locator(".pk-upload-done").wait_for(timeout=ANSWER_MS)
        assert "added zarghun-report.pdf" in log.inner_text() and "1 of 1 file in observatory" in log.inner_text()

        # The page now answers from the new collection, and says so.
        header.get_by_text("observatory", exact=True).wait_for()
        page.wait_for_function("() => document.querySelector('#pk-header').innerText.includes('Zarghun Observatory annual report')")
        assert "Pakistan" not in header.inner_text() and "one document" in header.inner_text()
        assert page.locator("#pk-collection input").first.input_value() == "observatory"
        row = page.locator("#pk-docs tbody tr").first
        assert [cell.inner_text() for cell in row.locator("td").all()] == [
            "Zarghun Observatory annual report", "zarghun-report.pdf", "pdf", "3", row.locator("td").nth(4).inner_text()]
        page.screenshot(path=str(ARTIFACTS / "ui-uploaded.png"), full_page=True)
        page.locator("#pk-documents").get_by_text("Documents").first.click()  # fold it away again

        answer = _ask(page, "When did the observatory record a comet?")
        assert "pk-answered" in answer.get_attribute("class"), answer.inner_text()
        assert "March 1998" in answer.locator(".pk-text").inner_text()
        page.wait_for_timeout(600)  # the chat scrolls itself to the newest message first
        card = answer.locator("details.pk-card").first
        assert card.locator(".pk-page").inner_text() == "p. 2"  # on the card's face, before it is opened
        passage_id = card.locator(".pk-passage").get_attribute("id")
        answer.locator(f'a.pk-ref[href="#{passage_id}"]').first.click()
        page.wait_for_function("card => card.open", arg=card.element_handle())
        assert "observatory recorded a bright comet in March 1998" in card.locator(".pk-passage mark").inner_text()
        assert "zarghun-report.pdf, p. 2, characters" in card.locator(".pk-where").inner_text()
        page.wait_for_timeout(700)
        page.screenshot(path=str(ARTIFACTS / "ui-pdf-citation.png"))
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "ui-failure-upload.png"), full_page=True)
        raise
    finally:
        page.close()


def test_a_visitor_beyond_the_queue_is_told_to_try_again(browser, tmp_path):
    """One answer running, one waiting (the queue holds one): a third visitor is told the page is
    busy, in the chat, with the input unlocked; the waiting one is told it waits its turn."""
    from test_ui import PassageGenerator, fake_models, make_project

    from ui.app import build_app, serve
    from ui.uploads import PageOptions

    generator = PassageGenerator(delay=0.3)  # about 5 s an answer
    app = build_app(bot_factory=fake_models(generator), settings=make_project(tmp_path), options=PageOptions(queue_size=1, concurrency=1))
    address, _ = serve(app, "127.0.0.1", free_port())
    pages = []
    try:
        for _ in range(3):
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto(address)
            page.locator("#pk-question textarea").wait_for()
            pages.append(page)
        for page in pages:
            box = page.locator("#pk-question textarea")
            box.fill("Who won the championship trophy?")
            box.press("Enter")
            page.wait_for_timeout(400)
        first, second, third = pages
        third.locator(".pk-error").get_by_text("try again in a minute").wait_for(timeout=ANSWER_MS)
        assert not third.locator("#pk-question textarea").is_disabled()
        assert "Waiting for the model" in second.locator("#pk-chat").inner_text()
        third.screenshot(path=str(ARTIFACTS / "ui-busy.png"))
        for page in (first, second):  # both answered in turn
            page.locator(".pk-answered").wait_for(timeout=ANSWER_MS)
        _ask(third, "Who won the championship trophy?")  # and the third's next try is answered
        assert third.locator(".pk-answered").count() == 1
    finally:
        for page in pages:
            page.close()
        app.close()
