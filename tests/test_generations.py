"""Index generations: atomic switching, unchanged-input fast path, killed builds, serving while building.

System tier: builds and updates run through the indexer's command line, some of them killed part-way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CCHC_SEEDS, CORPUS, ROOT, SEED_IDS, run_cli, wait_until

from app.search import SearchService

pytestmark = pytest.mark.system


def write_articles(path, n: int, word: str = "hành chính"):
    """n small articles mentioning word."""
    path.write_text("".join(json.dumps({"id": f"a{i}", "title": f"Tin số {i} về {word}",
                                        "body": f"Ủy ban nhân dân tỉnh bàn về {word} lần {i}. " * 20},
                                       ensure_ascii=False) + "\n" for i in range(n)), encoding="utf-8")
    return path


def writing_into(folder: Path, proc: subprocess.Popen, already: set[str], what: str) -> list[str]:
    """Wait until proc writes a file into folder that was not there (already): it is part-way through its work."""
    def new_files() -> list[str]:
        assert proc.poll() is None, f"the {what} ended before it could be killed"
        return sorted({p.name for p in folder.iterdir()} - already) if folder.exists() else []
    return wait_until(new_files, timeout=120, what=f"the {what} to write into {folder.name}")


def found(service: SearchService, q: str) -> set[str]:
    """Ids of the first page of hits of q."""
    return {h.id for h in service.search(q).hits}


def test_rebuilding_unchanged_input_is_a_no_op(tmp_path):
    index = tmp_path / "ix"
    assert run_cli("indexer", "build", "--index", str(index), str(CORPUS)).returncode == 0
    first = (index / "CURRENT").read_text()
    again = run_cli("indexer", "build", "--index", str(index), str(CORPUS))
    assert again.returncode == 0 and "unchanged 5" in again.stderr
    assert (index / "CURRENT").read_text() == first


def test_changed_build_switches_generation_and_service_follows(tmp_path):
    index = tmp_path / "ix"
    src = write_articles(tmp_path / "a.jsonl", 3)
    assert run_cli("indexer", "build", "--index", str(index), str(src)).returncode == 0
    service = SearchService(index)
    assert service.search("hành chính").total == 3
    old = (index / "CURRENT").read_text().strip()
    write_articles(src, 5)
    assert run_cli("indexer", "build", "--index", str(index), str(src)).returncode == 0
    new = (index / "CURRENT").read_text().strip()
    assert new != old and not (index / old).exists()
    assert service.search("hành chính").total == 5  # the same service object sees the new generation


def test_update_is_seen_without_restart(tmp_path):
    index = tmp_path / "ix"
    assert run_cli("indexer", "build", "--index", str(index), str(CORPUS)).returncode == 0
    service = SearchService(index)
    assert "x" not in [h.id for h in service.search("ngân hàng xanh").hits]
    extra = tmp_path / "x.jsonl"
    extra.write_text(json.dumps({"id": "x", "title": "Ngân hàng xanh", "body": "Tín dụng xanh"},
                                ensure_ascii=False) + "\n", encoding="utf-8")
    assert run_cli("indexer", "update", "--index", str(index), str(extra)).returncode == 0
    assert service.search("ngân hàng xanh").hits[0].id == "x"


def test_killed_build_leaves_the_live_index_and_the_next_build_works(tmp_path):
    index = tmp_path / "ix"
    assert run_cli("indexer", "build", "--index", str(index), str(CORPUS)).returncode == 0
    big = write_articles(tmp_path / "big.jsonl", 1500, "đất đai")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "indexer", "build", "--index", str(index), str(big)],
                            env=env, stderr=subprocess.DEVNULL, start_new_session=True)
    # Well inside the build: its writers are writing segments into the new generation, nothing is committed.
    writing_into(index / "gen-000002", proc, {"_MAIN_0.toc"}, "build")
    os.killpg(proc.pid, signal.SIGKILL)  # the build and its writer processes, at once
    proc.wait()
    assert (index / "CURRENT").read_text().strip() == "gen-000001"
    service = SearchService(index)
    assert service.stats()["documents"] == 5
    assert found(service, "cải cách hành chính") >= CCHC_SEEDS
    assert found(service, "đất đai") <= set(SEED_IDS)  # none of the new articles (a0 … a1499)
    done = run_cli("indexer", "build", "--index", str(index), str(big))
    assert done.returncode == 0, done.stderr
    assert SearchService(index).stats()["documents"] == 1500
    assert len(list(index.glob("gen-*"))) == 1  # the orphan of the killed build was cleaned up


def test_service_answers_while_a_build_runs_and_switches_when_done(tmp_path):
    index = tmp_path / "ix"
    assert run_cli("indexer", "build", "--index", str(index), str(CORPUS)).returncode == 0
    big = write_articles(tmp_path / "big.jsonl", 600, "đất đai")
    service = SearchService(index)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "indexer", "build", "--index", str(index), str(big)],
                            env=env, stderr=subprocess.DEVNULL)
    seen = set()
    while proc.poll() is None:
        result = service.search("cải cách hành chính đất đai", limit=3)  # never raises, never half-built
        seen.add(service.stats()["documents"])
        assert result.total > 0 and all(h.id.startswith(("a", "0")) for h in result.hits)
    assert proc.returncode == 0
    assert seen <= {5, 600}
    assert service.stats()["documents"] == 600


def test_full_disk_during_a_build_keeps_the_live_index(tmp_path):
    import resource

    index = tmp_path / "ix"
    assert run_cli("indexer", "build", "--index", str(index), str(CORPUS)).returncode == 0
    big = write_articles(tmp_path / "big.jsonl", 300, "đất đai")

    def small_disk():  # files may not grow past 256 kB: writes fail as on a full disk
        import signal as sig

        sig.signal(sig.SIGXFSZ, sig.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "indexer", "build", "--index", str(index), str(big),
                           "--workers", "1"], env=env, capture_output=True, text=True, preexec_fn=small_disk,
                          timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "live index is unchanged" in done.stderr
    service = SearchService(index)
    assert service.stats()["documents"] == 5
    assert found(service, "cải cách hành chính") >= CCHC_SEEDS
    assert found(service, "đất đai") <= set(SEED_IDS)  # none of the new articles (a0 … a1499)
    assert run_cli("indexer", "build", "--index", str(index), str(big)).returncode == 0
    assert SearchService(index).stats()["documents"] == 300


def test_killed_update_keeps_acknowledged_documents(tmp_path):
    index = tmp_path / "ix"
    first = write_articles(tmp_path / "a.jsonl", 50, "hành chính")
    assert run_cli("indexer", "build", "--index", str(index), str(first)).returncode == 0
    more = tmp_path / "b.jsonl"
    # Bodies differ, so each is segmented: the update must still be running when it is killed.
    body = "Thuế đất nông nghiệp. " * 200
    more.write_text("".join(json.dumps({"id": f"b{i}", "title": f"Tin {i}", "body": f"Bài {i}. {body}"},
                                       ensure_ascii=False) + "\n" for i in range(800)), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    live = index / (index / "CURRENT").read_text().strip()
    before = {p.name for p in live.iterdir()}
    proc = subprocess.Popen([sys.executable, "-m", "indexer", "update", "--index", str(index), str(more)],
                            env=env, stderr=subprocess.DEVNULL, start_new_session=True)
    writing_into(live, proc, before, "update")  # its segment is being written into the live generation
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    service = SearchService(index)
    assert service.stats()["documents"] == 50  # nothing half-written, nothing acknowledged lost
    assert service.search("hành chính").total == 50 and service.search("thuế đất nông nghiệp").total == 0
    done = run_cli("indexer", "update", "--index", str(index), str(more))
    assert done.returncode == 0, done.stderr
    assert SearchService(index).stats()["documents"] == 850


def test_corrupted_index_files_give_a_clear_message(tmp_path):
    index = tmp_path / "ix"
    assert run_cli("indexer", "build", "--index", str(index), str(CORPUS)).returncode == 0
    gen = next(index.glob("gen-*"))
    for toc in gen.glob("*.toc"):
        toc.write_bytes(b"\x00garbage")
    done = run_cli("app", "search", "--index", str(index), "UBND")
    assert done.returncode == 2 and "rebuild" in done.stderr and "Traceback" not in done.stderr
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    client = TestClient(create_app(Settings(index_dir=index)), raise_server_exceptions=False)
    res = client.get("/api/search", params={"q": "UBND"})
    assert res.status_code == 503 and "rebuild" in res.json()["detail"] and str(tmp_path) not in res.text
    assert run_cli("indexer", "build", "--index", str(index), str(CORPUS)).returncode == 0  # a rebuild mends it
    assert SearchService(index).stats()["documents"] == 5
