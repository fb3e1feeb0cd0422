"""End-to-end tests of the search page in headless Chromium (Debian's chromium, driven by Playwright).

Screenshots of each main state at 1280 px and 360 px go to tests/screenshots/ for review.
They skip where Chromium or Playwright is not installed (.ci/run installs both). System tier: a real
server and a browser.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request

import pytest
from conftest import CORPUS, ROOT, index_of, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = ROOT / "tests" / "screenshots"
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [pytest.mark.system, pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")]

SOURCES = ["baothaibinh.com.vn", "thaibinh.gov.vn"]


def _articles() -> list[dict]:
    """25 articles over three years and two sources, enough for facets and two pages; each says something of
    its own (two sentences of the seed pages), so that none is a near-copy of another (those are collapsed)."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.txt")))
    sentences = [s.strip() for s in text.replace("\n", " ").split(". ") if 120 < len(s.strip()) < 400]
    out = []
    for i in range(25):
        year = 2022 + i % 3
        own = ". ".join(sentences[2 * i:2 * i + 2])
        out.append({"id": f"tb-{i:02d}", "title": f"Thái Bình đẩy mạnh cải cách hành chính đợt {i + 1}",
                    "body": f"Ngày {1 + i % 27}/{1 + i % 12}/{year}, UBND tỉnh Thái Bình họp bàn về cải cách "
                            f"hành chính và chuyển đổi số, lần thứ {i + 1}. {own}.",
                    "published": f"{year}-{1 + i % 12:02d}-{1 + i % 27:02d}T08:00:00",
                    "source": SOURCES[i % 2], "category": "hanh-chinh",
                    "url": f"https://{SOURCES[i % 2]}/tin/{i}"})
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real uvicorn server over a small index, on a free loopback port."""
    index = index_of(tmp_path_factory.mktemp("browser"), _articles())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--index", str(index), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        with urllib.request.urlopen(base + "/healthz", timeout=5) as res:
            return json.load(res)["documents"] == 25

    try:
        wait_until(healthy, timeout=120, what="the server to serve the 25 articles", interval=0.1, ignore=(OSError,))
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium, without a user profile or background networking."""
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    pg = context.new_page()
    yield pg
    context.close()


def shoot(page, name: str) -> None:
    """Screenshots at desktop and phone widths; at 360 px the page must not scroll sideways."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(SHOTS / f"{name}-1280.png"), full_page=True)
    page.set_viewport_size({"width": 360, "height": 740})
    page.screenshot(path=str(SHOTS / f"{name}-360.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, f"{name} scrolls sideways at 360 px"
    page.set_viewport_size({"width": 1280, "height": 900})


def search(page, base: str, text: str) -> None:
    page.goto(base + "/")
    page.fill("#q", text)
    page.press("#q", "Enter")
    page.wait_for_selector("p.summary")


def test_type_a_query_and_see_results(page, server):
    page.goto(server + "/")
    shoot(page, "home")
    search(page, server, "cải cách hành chính")
    assert "Tìm thấy 25 kết quả" in page.inner_text("p.summary")
    assert page.locator("li.hit").count() == 10
    assert page.locator("li.hit mark").count() > 0
    assert page.input_value("#q") == "cải cách hành chính"
    shoot(page, "results")


def test_unaccented_query_and_follow_the_suggestion(page, server):
    search(page, server, "cai cach hanh chinh")
    assert page.locator("li.hit").count() == 10
    page.click("p.suggestion a")
    page.wait_for_selector("p.summary")
    assert page.input_value("#q") == "cải cách hành chính"


def test_filter_by_year_then_clear(page, server):
    search(page, server, "cải cách hành chính")
    page.click("aside.facets a:text('2023')")
    page.wait_for_selector("p.summary")
    assert "from=2023-01-01" in page.url
    dates = page.locator("li.hit p.meta").all_inner_texts()
    assert dates and all("/2023" in d for d in dates)
    shoot(page, "filtered")
    page.click("aside.facets section:has(h2:text('Tháng')) a >> nth=0")
    page.wait_for_selector("p.summary")
    assert "from=2023-" in page.url and "Tìm thấy" in page.inner_text("p.summary")
    page.click("text=Xóa bộ lọc")
    page.wait_for_selector("p.summary")
    assert "Tìm thấy 25 kết quả" in page.inner_text("p.summary")


def test_sort_newest_and_page_forward_and_back(page, server):
    search(page, server, "cải cách hành chính")
    page.click("details.filters summary")
    page.select_option("select[name=sort]", "newest")
    page.press("#q", "Enter")
    page.wait_for_selector("p.summary")
    assert "sort=newest" in page.url
    first_page = page.locator("li.hit h2").all_inner_texts()
    years = [int(m.split("/")[2][:4]) for m in page.locator("li.hit p.meta").all_inner_texts()]
    assert years == sorted(years, reverse=True)
    page.click("a[rel=next]")
    page.wait_for_selector("p.summary")
    assert "page=2" in page.url and "sort=newest" in page.url
    assert page.locator("li.hit h2").all_inner_texts() != first_page
    page.go_back()
    page.wait_for_selector("p.summary")
    assert page.locator("li.hit h2").all_inner_texts() == first_page


def test_autocomplete_and_article_page(page, server):
    page.goto(server + "/")
    page.type("#q", "cai c", delay=30)
    page.wait_for_selector("#q-suggestions option", state="attached", timeout=5000)
    assert "cải cách" in page.locator("#q-suggestions option").evaluate_all("os => os.map(o => o.value)")
    page.goto(server + "/articles/tb-03?q=c%E1%BA%A3i%20c%C3%A1ch")
    assert page.locator("article mark").count() > 0
    related = page.locator("section.related li a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert related and all(href.startswith("/articles/tb-") for href in related)
    assert "/articles/tb-03" not in related  # other articles, not itself
    shoot(page, "article")


def test_keyboard_alone(page, server):
    page.goto(server + "/")
    assert page.evaluate("document.activeElement.id") == "q"  # the search box has the focus at once
    page.keyboard.type("UBND tỉnh")
    page.keyboard.press("Enter")
    page.wait_for_selector("p.summary")
    for _ in range(40):  # Tab through the page until a result link has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('li.hit') !== null"):
            break
    else:
        raise AssertionError("no result link reachable with Tab")
    assert page.evaluate("document.activeElement.tagName") == "A"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"  # focus is visible


def test_empty_result_state(page, server):
    search(page, server, "zzqqxx")
    assert "Không tìm thấy kết quả" in page.inner_text("main")
    shoot(page, "empty")
