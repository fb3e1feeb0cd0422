"""The app's command line: search and bulk lookups (system tier: each test runs `python -m app`)."""

from __future__ import annotations

import json

import pytest
from conftest import SEED_IDS, run_cli

pytestmark = pytest.mark.system


def test_search_cli_text_and_json(seed_index):
    done = run_cli("app", "search", "--index", str(seed_index), "--limit", "2", "cải", "cách", "hành", "chính")
    assert done.returncode == 0 and "kết quả" in done.stdout and "cải cách hành chính" in done.stdout
    res = json.loads(run_cli("app", "search", "--index", str(seed_index), "--json", "UBND").stdout)
    assert res["total"] == 5 and {h["id"] for h in res["hits"]} == set(SEED_IDS)  # every seed page says UBND
    assert "<mark>UBND</mark>" in res["hits"][0]["snippet"]


def test_search_cli_without_index(tmp_path):
    done = run_cli("app", "search", "--index", str(tmp_path / "none"), "UBND")
    assert done.returncode == 2 and "no index" in done.stderr and "Traceback" not in done.stderr


def test_bulk_jsonl_and_plain_lines_in_order(seed_index):
    stdin = "\n".join([json.dumps({"id": "q1", "q": "cải cách hành chính"}, ensure_ascii=False),
                       "GRDP",
                       json.dumps({"id": "q3", "q": "hội nghị", "from": "2024-01-01"}, ensure_ascii=False)]) + "\n"
    done = run_cli("app", "bulk", "--index", str(seed_index), "--limit", "3", stdin=stdin)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["q1", 2, "q3"]
    assert rows[1]["hits"][0]["id"] == "000_c148fd66da705f65"
    assert [h["id"] for h in rows[2]["hits"]] == ["000_c148fd66da705f65"]
    assert all(set(h) == {"id", "score", "title"} for r in rows for h in r["hits"])


def test_bulk_bad_line_is_reported_and_the_rest_answered(seed_index):
    done = run_cli("app", "bulk", "--index", str(seed_index), stdin='{"q": \nUBND\n{"id": 1, "from": "x", "q": "a"}\n')
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1 and len(rows) == 3
    assert rows[0]["error"] == "line 1: bad JSON (Expecting value)" and rows[0]["hits"] == []
    assert rows[1]["id"] == 2 and rows[1]["total"] == 5  # the plain line between them is answered
    assert rows[2]["error"] == "line 3: 'from' is not an ISO date: 'x'"
    assert "line 1: bad JSON" in done.stderr and "line 3:" in done.stderr and "Traceback" not in done.stderr


def test_bulk_ten_thousand_queries_in_one_run(seed_index):
    words = ["UBND", "cải cách", "hoi nghi", "Thái Bình", "GRDP", "công chức", "zzz", "\"phát triển\""]
    stdin = "".join(json.dumps({"id": i, "q": words[i % len(words)]}, ensure_ascii=False) + "\n"
                    for i in range(10_000))
    done = run_cli("app", "bulk", "--index", str(seed_index), "--limit", "1", stdin=stdin)
    assert done.returncode == 0, done.stderr[-500:]
    rows = done.stdout.splitlines()
    assert len(rows) == 10_000
    assert [json.loads(rows[i])["id"] for i in (0, 4999, 9999)] == [0, 4999, 9999]


@pytest.mark.system
def test_search_side_starts_without_the_grouping_library():
    """The search side reads saved story groups only: datasketch (and the scipy it imports, a third of a
    second of every `app search` and `app bulk` start-up) stays unloaded."""
    import subprocess
    import sys

    code = "import sys, app.cli, app.main; print(sorted(m for m in ('datasketch', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
