"""The Gradio UI and the embeddable widget in a real (Debian) Chromium, fully offline.

A real `rag serve` on loopback with the seed index and the fast generator; every request the
pages make is recorded and must stay on 127.0.0.1 (no fonts, analytics or CDN).
Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import bibtexparser
import pytest
import rispy

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
QUESTION = "What was the median PFS with ivonescimab in HARMONi-A?"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ANSWER_TIMEOUT_MS = 420_000  # CPU generation on a shared machine


@pytest.fixture(scope="module")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from rag.api.launch import ServerProcess

    root = tmp_path_factory.mktemp("ui-server")
    with ServerProcess(
        root / "index",
        workdir=root,
        overrides=["generate.max_new_tokens=32"],
        extra_args=["--preload"],
    ) as running:
        yield running


@pytest.fixture(scope="module")
def server(server_process) -> str:
    return server_process.url


def _ask(page, question: str) -> None:
    """Type and send ``question``; the chat shows it at once when the click reached the app.

    A click that never reached it (nothing shown) is sent again once, with a warning, as a
    user would click again; what follows is then checked as usual.
    """
    from playwright.sync_api import TimeoutError as PageTimeout

    shown = "([q]) => document.querySelector('#rag-chat').innerText.includes(q)"
    for attempt in range(2):
        page.fill("#rag-question textarea", question)
        page.click("#rag-ask")
        try:
            page.wait_for_function(shown, arg=[question], timeout=30_000)
            return
        except PageTimeout:
            if attempt:
                raise
            warnings.warn("the first Ask click did not reach the app; sent again", stacklevel=2)


def _wait_or_explain(page, selector: str, timeout_ms: int, server_process) -> None:
    """Wait for ``selector``; on a timeout, fail with what the page and the server show."""
    from playwright.sync_api import TimeoutError as PageTimeout

    try:
        page.wait_for_selector(selector, timeout=timeout_ms)
    except PageTimeout:
        _shot(page, "timeout")
        chat = page.inner_html("#rag-chat")[-3000:] if page.locator("#rag-chat").count() else ""
        pytest.fail(
            f"{selector} not shown in {timeout_ms / 1000:.0f} s\n--- chat ---\n{chat}\n"
            f"--- server log ---\n{server_process.log_tail(80)}"
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (.ci/install-browser.sh)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A fresh page that records the host of every request it makes."""
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    page = context.new_page()
    page.requests = []  # type: ignore[attr-defined]
    page.on("request", lambda r: page.requests.append(r.url))  # type: ignore[attr-defined]
    yield page
    context.close()


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# Records when each selector first matches, so the test can check the order in which the
# streamed parts appeared (evidence, then draft tokens, then the verified answer).
WATCH = """([host, selectors]) => {
  window.__seen = {};
  const root = host ? document.querySelector(host).shadowRoot : document;
  const check = () => {
    for (const s of selectors) {
      if (!(s in window.__seen) && root.querySelector(s)) { window.__seen[s] = performance.now(); }
    }
  };
  new MutationObserver(check).observe(host ? root : document.body,
    {subtree: true, childList: true, characterData: true});
  check();
}"""


def _assert_order(page, evidence: str, draft: str, answer: str) -> None:
    seen = page.evaluate("window.__seen")
    assert evidence in seen and answer in seen, seen
    assert seen[evidence] < seen[answer], seen
    if draft in seen:  # tokens streamed in between (a short answer may skip the draft render)
        assert seen[evidence] <= seen[draft] <= seen[answer], seen


def _assert_local(requests: list[str]) -> None:
    assert requests, "no request was recorded"
    outside = [
        u
        for u in requests
        if urlsplit(u).scheme not in ("data", "blob", "about")
        and (urlsplit(u).hostname != "127.0.0.1")
    ]
    assert not outside, f"requests left 127.0.0.1: {outside[:10]}"


def test_gradio_chat_streams_a_cited_answer(server: str, server_process, page) -> None:
    page.goto(server + "/", wait_until="load")
    page.wait_for_selector("#rag-question textarea", timeout=60_000)
    _shot(page, "ui-start")
    page.evaluate(WATCH, [None, ["#rag-chat .rag-evidence", "#rag-chat .rag-draft", ".rag-answer"]])
    _ask(page, QUESTION)

    # Evidence arrives first, in the chat and the sources panel, before the answer.
    _wait_or_explain(page, "#rag-chat .rag-evidence", 120_000, server_process)
    _shot(page, "ui-evidence")

    # Then the verified answer replaces the draft; its [n] markers link to source cards.
    page.wait_for_selector("#rag-chat .rag-answer", timeout=ANSWER_TIMEOUT_MS)
    _assert_order(page, "#rag-chat .rag-evidence", "#rag-chat .rag-draft", ".rag-answer")
    answer = page.inner_text("#rag-chat .rag-answer")
    assert "7.1" in answer
    assert page.locator("#rag-chat .rag-draft").count() == 0
    card = page.locator("#rag-sources details.rag-card").filter(has_text="HARMONi-A").first
    card.wait_for(timeout=30_000)
    assert card.locator("mark").count() >= 1
    assert card.locator(".rag-badge").inner_text() in ("supported", "partial", "unsupported")
    marked = " ".join(card.locator("mark").all_inner_texts())
    assert "7.1" in marked or "HARMONi-A" in marked

    cite = page.locator("#rag-chat a.rag-cite").first
    target = cite.get_attribute("href").lstrip("#")
    page.evaluate(f"document.getElementById('{target}').open = false")
    cite.click()
    page.wait_for_function(f"document.getElementById('{target}').open === true")
    page.wait_for_timeout(400)
    _shot(page, "ui-answer")

    # "open where it stands": the quote opens in its document, highlighted and scrolled to.
    link = card.locator("a.rag-open").first.get_attribute("href")
    assert link and link.endswith("#quote")
    view = page.context.new_page()
    view.goto(server + link, wait_until="load")
    mark = view.locator("#quote")
    assert mark.is_visible() and mark.inner_text().strip()
    assert mark.inner_text().strip()[:40] in card.inner_text()  # the card's quote, in place
    assert view.evaluate(
        "(() => { const r = document.getElementById('quote')"
        ".getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight })()"
    )
    _shot(view, "ui-quote-in-document")
    view.close()

    # The cited documents download as BibTeX that a real parser reads.
    page.click("#rag-cited-export")
    with page.expect_download(timeout=60_000) as download:
        page.locator("#rag-cited-file a").first.click()
    entries = bibtexparser.parse_string(Path(download.value.path()).read_text()).entries
    assert entries and all(e["title"] for e in entries)
    assert "reference(s) as bibtex" in page.inner_text("#rag-cited-note")

    # Thumbs up on the answer is recorded.
    page.locator("#rag-chat button[aria-label='Like']").last.click()
    page.wait_for_selector("#rag-feedback:has-text('recorded')", timeout=30_000)

    # A follow-up in the same conversation: rewritten to stand alone (and shown) before search.
    _ask(page, "And what was its hazard ratio?")
    page.wait_for_function(
        "document.querySelectorAll('#rag-chat .rag-answer, #rag-chat .rag-abstain').length >= 2",
        timeout=ANSWER_TIMEOUT_MS,
    )
    rewrite = page.inner_text("#rag-rewrite")
    if rewrite:  # empty when the model's rewrite was rejected and the question searched as is
        assert rewrite.startswith("Searched as:") and "hazard ratio" in rewrite.lower()
    assert page.locator("#rag-chat .rag-error").count() == 0
    _shot(page, "ui-follow-up")
    _assert_local(page.requests)


def test_gradio_documents_tab_adds_and_removes(server: str, page, tmp_path: Path) -> None:
    note = tmp_path / "zorba note.md"
    note.write_text("# Zorbitinib note\n\nZorbitinib reached an ORR of 41% in ZORBA-2.\n")
    page.goto(server + "/", wait_until="load")
    page.wait_for_selector("#rag-question textarea", timeout=60_000)
    page.get_by_role("tab", name="Documents").click()
    page.wait_for_selector("#rag-add", state="visible", timeout=30_000)
    with page.expect_file_chooser() as chooser:
        page.locator("#rag-files button").first.click()
    chooser.value.set_files([str(note)])
    page.wait_for_selector("#rag-files :text('zorba note.md')", timeout=60_000)
    page.click("#rag-add")
    page.wait_for_selector("#rag-add-summary:has-text('added')", timeout=120_000)
    page.wait_for_selector("#rag-docs :text('Zorbitinib note')", timeout=30_000)
    _shot(page, "ui-documents")

    page.locator("#rag-remove-pick input").click()
    page.get_by_role("option", name="Zorbitinib note (zorba-note)").click()
    page.click("#rag-remove")
    page.wait_for_selector("#rag-remove-note:has-text('Removed')", timeout=60_000)
    assert "Zorbitinib note" in page.inner_text("#rag-remove-note")
    page.wait_for_function(
        "!document.querySelector('#rag-docs').innerText.includes('zorba-note')", timeout=30_000
    )

    # The whole library exports as RIS (the seed documents), downloaded through the page.
    page.locator("#rag-library-export").scroll_into_view_if_needed()
    page.get_by_label("Reference format").click()
    page.get_by_role("option", name="ris").click()
    page.click("#rag-library-export")
    with page.expect_download(timeout=60_000) as download:
        page.locator("#rag-library-file a").first.click()
    records = rispy.loads(Path(download.value.path()).read_text())
    assert {r["type_of_reference"] for r in records} <= {"JOUR", "NEWS", "GEN"}
    assert any(r.get("doi") == "10.3390/cancers18010137" for r in records)
    _shot(page, "ui-references")
    _assert_local(page.requests)


def test_a_pdf_quote_opens_on_its_rendered_page_highlighted(server: str, page) -> None:
    import httpx

    pdf = Path(__file__).resolve().parents[1] / "fixtures" / "docs" / "trial_report.pdf"
    files = {"files": ("trial report.pdf", pdf.read_bytes(), "application/pdf")}
    assert httpx.post(server + "/api/documents", files=files, timeout=300).status_code == 200
    hits = httpx.get(server + "/api/search", params={"q": "examplinib docetaxel median PFS"})
    hit = next(h for h in hits.json()["hits"] if h["provenance"]["format"] == "pdf")
    quote = "Median progression-free survival was longer with examplinib than with docetaxel."
    doc, text = hit["provenance"]["doc_id"], hit["text"]
    start = hit["provenance"]["char_start"] + text.index(quote)
    page.goto(f"{server}/api/documents/{doc}/view?start={start}&end={start + len(quote)}#quote")
    page.wait_for_selector("#quote", state="visible", timeout=30_000)
    assert page.locator(".page img").is_visible() and page.locator(".hl").count() >= 1
    box, image = page.locator("#quote").bounding_box(), page.locator(".page img").bounding_box()
    assert image["x"] <= box["x"] < image["x"] + image["width"]  # on the page, not beside it
    assert 0 <= box["y"] < 1000  # scrolled into view
    _shot(page, "pdf-quote-highlighted")
    _assert_local(page.requests)
    httpx.delete(f"{server}/api/documents/{doc}", timeout=120)


def test_trials_tab_shows_a_cited_table(server: str, page) -> None:
    page.goto(server + "/", wait_until="load")
    page.wait_for_selector("#rag-question textarea", timeout=60_000)
    page.get_by_role("tab", name="Trials").click()
    page.click("#rag-trials-show")
    cell = page.locator("#rag-trials td a", has_text="NCT05184712").first
    cell.wait_for(timeout=120_000)
    assert page.locator("#rag-trials tr").count() >= 6  # a header and the article's 5 trials
    _shot(page, "ui-trials")
    with page.context.expect_page() as opened:
        cell.click()
    view = opened.value
    view.wait_for_load_state()
    assert view.locator("#quote").inner_text() == "NCT05184712"
    view.close()
    _assert_local(page.requests)


def test_document_text_is_inert_on_the_quote_page(server: str, page) -> None:
    import httpx

    payload = (
        "Zorbitinib note. <script>window.__pwned = 1</script><img src=x "
        'onerror="window.__pwned = 2"> The ORR was 41% in ZORBA-2.'
    )
    files = {"files": ("payload note.txt", payload.encode(), "text/plain")}
    report = httpx.post(server + "/api/documents", files=files, timeout=300).json()
    doc = report["results"][0]["doc_id"]
    hit = httpx.get(server + "/api/search", params={"q": "zorbitinib ORR", "doc": doc}).json()
    text, start = hit["hits"][0]["text"], hit["hits"][0]["provenance"]["char_start"]
    a = start + text.index("<script>")
    b = start + text.index("ZORBA-2.") + len("ZORBA-2.")
    response = page.goto(f"{server}/api/documents/{doc}/view?start={a}&end={b}#quote")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page.wait_for_selector("#quote", state="visible", timeout=30_000)
    assert page.evaluate("window.__pwned") is None  # nothing ran
    assert "<script>window.__pwned = 1</script>" in page.inner_text("#quote")  # shown as text
    _assert_local(page.requests)
    httpx.delete(f"{server}/api/documents/{doc}", timeout=120)


def test_gradio_abstention_is_styled_with_closest_passages(server: str, page) -> None:
    page.goto(server + "/", wait_until="load")
    page.wait_for_selector("#rag-question textarea", timeout=60_000)
    _ask(page, "What is the boiling point of liquid nitrogen?")
    box = page.locator("#rag-chat .rag-abstain")
    box.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert "do not answer this question" in box.inner_text()
    assert page.locator("#rag-sources details.rag-closest").count() >= 1
    assert "Closest passages" in page.inner_text("#rag-sources")
    _shot(page, "ui-abstain")
    _assert_local(page.requests)


def test_widget_on_example_page_streams_an_answer(server: str, page) -> None:
    page.goto(server + "/static/example.html", wait_until="load")
    launcher = page.locator("#onco-rag-widget .launcher")
    launcher.wait_for(timeout=30_000)
    _shot(page, "widget-closed")
    launcher.click()
    page.evaluate(WATCH, ["#onco-rag-widget", [".evidence", ".draft:not(:empty)", ".answer"]])
    page.fill("#onco-rag-widget textarea", QUESTION)
    page.click("#onco-rag-widget form button")

    page.wait_for_selector("#onco-rag-widget .evidence", timeout=120_000)
    _shot(page, "widget-evidence")

    page.wait_for_selector("#onco-rag-widget .answer", timeout=ANSWER_TIMEOUT_MS)
    _assert_order(page, ".evidence", ".draft:not(:empty)", ".answer")
    assert "7.1" in page.inner_text("#onco-rag-widget .answer")
    details = page.locator("#onco-rag-widget details.citation").first
    assert details.get_attribute("open") is None  # quotes start collapsed
    page.locator("#onco-rag-widget button.cite").first.click()
    page.wait_for_function(
        "document.querySelector('#onco-rag-widget').shadowRoot"
        ".querySelector('details.citation').open === true"
    )
    quote = details.locator("blockquote").first.inner_text()
    assert quote.strip()
    assert "HARMONi-A" in details.inner_text() or "7.1" in quote
    link = details.locator("a.open").first.get_attribute("href")
    assert link.startswith(server + "/api/documents/") and link.endswith("#quote")
    view = page.context.new_page()
    view.goto(link, wait_until="load")
    assert view.locator("#quote").is_visible()
    view.close()
    _shot(page, "widget-answer")
    _assert_local(page.requests)


# An uploaded report whose title, text and links carry payloads (as text: a parser reads
# "&lt;script&gt;" as "<script>"). If any of them were rendered as markup, it would set the
# page-level canary window.__pwned or fetch from evil.example.
HOSTILE_HTML = """<html><head><title>ZORBA-2 report
&lt;img src=x onerror="window.__pwned='title'"&gt;</title></head><body>
<h1>ZORBA-2 trial of zorbitinib &lt;svg onload="window.__pwned='svg'"&gt;</h1>
<p>In the phase 2 ZORBA-2 trial, zorbitinib reached an objective response rate of 41% in
previously treated patients &lt;script&gt;window.__pwned='script'&lt;/script&gt;
&lt;img src="http://evil.example/p.png" onerror="window.__pwned='img'"&gt;
&lt;a href="javascript:window.__pwned='link'"&gt;details&lt;/a&gt;
[see the protocol](javascript:window.__pwned='markdown')
&lt;style&gt;body{background:url(http://evil.example/c.png)}&lt;/style&gt;
\u202eevil\u202c zero\u200bwidth.</p></body></html>"""
HOSTILE_QUESTION = "What objective response rate did zorbitinib reach in the ZORBA-2 trial?"


PAYLOADS = ("title <img onerror>", "<svg onload>", "<script>", "<img src=evil onerror>",
            "javascript: link", "markdown javascript: link", "<style> url(evil)",
            "bidi and zero-width characters")  # fmt: skip


def _record_payloads() -> None:
    """Figures for eval/results/hostile_browser.json (reached only when every check held)."""
    import json
    import time

    path = Path(__file__).resolve().parents[2] / "eval" / "results" / "hostile_browser.json"
    figures = {
        "payloads": list(PAYLOADS),
        "surfaces": ["Gradio UI (answer + source card)", "widget (answer + citations)"],
        "payloads_tried_per_surface": len(PAYLOADS),
        "executed": 0,
        "requests_outside_loopback": 0,
        "also": "the quote view: <script> and <img onerror> inert under default-src 'none'",
        "test": "tests/ui/test_browser.py::"
        + test_hostile_document_text_is_inert_in_the_ui_and_the_widget.__name__,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path.write_text(json.dumps(figures, indent=2) + "\n")


def _assert_inert(page) -> None:
    assert page.evaluate("window.__pwned") is None, page.evaluate("window.__pwned")
    planted = "img[src*='evil.example'], svg[onload], a[href^='javascript:']"
    assert page.locator(planted).count() == 0
    _assert_local(page.requests)


def test_hostile_document_text_is_inert_in_the_ui_and_the_widget(server: str, page) -> None:
    import httpx

    files = {"files": ("zorba-2 report.html", HOSTILE_HTML.encode(), "text/html")}
    report = httpx.post(server + "/api/documents", files=files, timeout=300).json()
    doc = report["results"][0]["doc_id"]
    try:
        response = page.goto(server + "/", wait_until="load")
        assert "connect-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_selector("#rag-question textarea", timeout=60_000)
        _ask(page, HOSTILE_QUESTION)
        page.wait_for_selector(
            "#rag-chat .rag-answer, #rag-chat .rag-abstain", timeout=ANSWER_TIMEOUT_MS
        )
        card = page.locator("#rag-sources details").filter(has_text="ZORBA-2").first
        card.wait_for(timeout=30_000)
        card.evaluate("el => el.open = true")
        shown = card.inner_text()
        assert "41%" in shown and "<script>" in shown  # the payload is shown, as text
        _shot(page, "ui-hostile-document")
        _assert_inert(page)

        widget = page.context.new_page()
        widget.requests = []
        widget.on("request", lambda r: widget.requests.append(r.url))
        response = widget.goto(server + "/static/example.html", wait_until="load")
        assert "object-src 'none'" in response.headers["content-security-policy"]
        widget.locator("#onco-rag-widget .launcher").click()
        widget.fill("#onco-rag-widget textarea", HOSTILE_QUESTION)
        widget.click("#onco-rag-widget form button")
        widget.wait_for_selector(
            "#onco-rag-widget .answer, #onco-rag-widget .abstain, #onco-rag-widget .error",
            timeout=ANSWER_TIMEOUT_MS,
        )
        shown = widget.inner_text("#onco-rag-widget .log")
        assert "ZORBA-2" in shown or "41%" in shown
        widget.screenshot(path=str(SCREENSHOTS / "widget-hostile-document.png"), full_page=True)
        _assert_inert(widget)
        widget.close()
        _record_payloads()
    finally:
        httpx.delete(f"{server}/api/documents/{doc}", timeout=120)
