"""Crash safety for real: a build into a genuinely full filesystem, and kill -9 of the running server.

System tier (but for the unit test of the writer's exit code): mounts, builds through the CLI, servers.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS, ROOT, run_cli, wait_until
from fastapi.testclient import TestClient

from app.main import create_app
from app.search import SearchService
from app.settings import Settings

TOKEN = "kill-test-token"


def write_articles(path: Path, n: int, word: str) -> Path:
    """n small articles mentioning word (about 2 kB of index each)."""
    path.write_text("".join(json.dumps({"id": f"a{i}", "title": f"Tin số {i} về {word}",
                                        "body": f"Ủy ban nhân dân tỉnh bàn về {word} lần {i}. " * 20},
                                       ensure_ascii=False) + "\n" for i in range(n)), encoding="utf-8")
    return path


# --- a genuinely small filesystem ------------------------------------------------------------------


def _run(*cmd: str) -> subprocess.CompletedProcess:
    """Run a system command, capturing its output."""
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def small_filesystem(mountpoint: Path, megabytes: int) -> Iterator[str]:
    """Mount a filesystem of that size at mountpoint (tmpfs, else a loop-mounted ext4 image); skip if neither can."""
    mountpoint.mkdir()
    tmpfs = _run("mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(mountpoint))
    kind = "tmpfs"
    if tmpfs.returncode != 0:
        image = mountpoint.parent / "small.img"
        with open(image, "wb") as handle:
            handle.truncate(megabytes * 1024 * 1024)
        mkfs = _run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))
        loop = _run("mount", "-o", "loop", str(image), str(mountpoint)) if mkfs.returncode == 0 else mkfs
        if loop.returncode != 0:
            pytest.skip(f"cannot mount a small filesystem here: `mount -t tmpfs` said {tmpfs.stderr.strip()!r}; "
                        f"the loop-mounted ext4 image: {loop.stderr.strip()!r}")
        kind = "ext4 on a loop device"
    try:
        yield kind
    finally:
        if _run("umount", str(mountpoint)).returncode != 0:
            _run("umount", "-l", str(mountpoint))  # a searcher still holds files open: detach it all the same


@pytest.mark.system
def test_a_build_into_a_full_filesystem_keeps_the_live_index(tmp_path):
    small = write_articles(tmp_path / "small.jsonl", 50, "hành chính")
    big = write_articles(tmp_path / "big.jsonl", 1500, "đất đai")  # about 3.2 MB of index
    with small_filesystem(tmp_path / "disk", 6) as kind:
        index = tmp_path / "disk" / "ix"
        assert run_cli("indexer", "build", "--index", str(index), str(small)).returncode == 0
        old = (index / "CURRENT").read_text().strip()
        # A server over the folder, before the build; no rate limit: the loop below searches as fast as it can.
        client = TestClient(create_app(Settings(index_dir=index, rate_limit_per_minute=0)))
        assert client.get("/api/search", params={"q": "hành chính"}).json()["total"] == 50
        health = client.get("/healthz").json()
        filler = tmp_path / "disk" / "filler"
        filler.write_bytes(b"\0" * (3_500 * 1024))  # what is left (about 2.3 MB) cannot hold the new generation

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", "indexer", "build", "--index", str(index), str(big)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        answers = 0
        while proc.poll() is None:  # searches go on as usual while the build fills the disk
            res = client.get("/api/search", params={"q": "hành chính đất đai", "limit": 3})
            assert res.status_code == 200 and res.json()["total"] == 50
            answers += 1
        _, stderr = proc.communicate()
        assert proc.returncode == 2, f"the build fitted on {kind}" if proc.returncode == 0 else stderr
        assert "No space left on device" in stderr and "live index is unchanged" in stderr, stderr
        assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
        assert answers > 0
        assert (index / "CURRENT").read_text().strip() == old
        assert sorted(p.name for p in index.glob("gen-*")) == [old]  # the half-written generation is gone
        assert client.get("/healthz").json() == health and health["version"].startswith(old)
        hits = client.get("/api/search", params={"q": "hành chính", "limit": 100}).json()["hits"]
        assert len(hits) == 50 and client.get("/api/search", params={"q": "đất đai"}).json()["total"] == 0
        assert SearchService(index).stats()["documents"] == 50  # a server started now sees the same

        filler.unlink()
        done = run_cli("indexer", "build", "--index", str(index), str(big))
        assert done.returncode == 0, done.stderr
        # Every copy counts here (collapse=false): the generated articles hold a few near-copies of each other.
        assert client.get("/api/search", params={"q": "đất đai", "collapse": "false"}).json()["total"] == 1500
        assert sorted(p.name for p in index.glob("gen-*")) == [(index / "CURRENT").read_text().strip()]


def test_a_writer_process_that_hit_a_full_disk_fails_the_build_with_its_cause():
    """A writer process dies quietly with its errno in the exit code; the build raises it, in one line."""
    from types import SimpleNamespace

    from indexer.build import _writer_failure

    writer = SimpleNamespace(tasks=[SimpleNamespace(exitcode=0), SimpleNamespace(exitcode=100 + errno.ENOSPC)])
    with pytest.raises(OSError, match="No space left on device"):
        _writer_failure(writer)
    _writer_failure(SimpleNamespace(tasks=[SimpleNamespace(exitcode=0), SimpleNamespace(exitcode=-9)]))  # killed:
    # the build's count of written articles catches that one


# --- kill -9 of the server -----------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(index: Path, port: int, log: Path) -> subprocess.Popen:
    """`python -m app serve` in a process group of its own, answering once /healthz shows the index."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRACUU_WRITE_TOKEN": TOKEN, "TRACUU_RATE_LIMIT_PER_MINUTE": "0"}
    with open(log, "ab") as out:  # a file, not a pipe: nobody reads a pipe, and a full one would stall the server
        proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--index", str(index), "--port", str(port)],
                                env=env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True)

    def healthy() -> bool:
        assert proc.poll() is None, "the server exited: " + log.read_text()[-2000:]
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json().get("status") == "ok"

    try:
        wait_until(healthy, timeout=120, what="the server to answer /healthz", interval=0.2, ignore=(httpx.HTTPError,))
    except AssertionError as err:
        kill(proc)
        raise AssertionError(f"{err}\n{log.read_text()[-2000:]}") from None
    return proc


def kill(proc: subprocess.Popen) -> None:
    """kill -9 the server and everything it started (the indexer it hands writes to)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture
def served_index(tmp_path) -> Iterator[tuple[Path, int, Path]]:
    """The seed articles in an index of their own, a free port and a server log; servers left are killed."""
    index = tmp_path / "ix"
    assert run_cli("indexer", "build", "--index", str(index), str(CORPUS)).returncode == 0
    yield index, free_port(), tmp_path / "server.log"


@pytest.mark.system
def test_an_acknowledged_put_survives_kill_9_of_the_server(served_index):
    index, port, log = served_index
    base = f"http://127.0.0.1:{port}"
    article = {"title": "Ngân hàng xanh cho hợp tác xã", "body": "Tín dụng xanh cho hợp tác xã nông nghiệp sạch.",
               "published": "2024-06-01", "source": "kiểm thử"}
    server = start_server(index, port, log)
    try:
        res = httpx.put(f"{base}/api/documents/kill-9", json=article, headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=120)
        assert res.status_code == 200 and res.json() == {"id": "kill-9", "status": "indexed"}
    finally:
        kill(server)  # at once, after the acknowledgement
    server = start_server(index, port, log)
    try:
        doc = httpx.get(f"{base}/api/documents/kill-9", timeout=30)
        assert doc.status_code == 200 and doc.json()["title"] == article["title"]
        hits = httpx.get(f"{base}/api/search", params={"q": "tín dụng xanh hợp tác xã"}, timeout=30).json()["hits"]
        assert hits[0]["id"] == "kill-9"
        assert httpx.get(f"{base}/healthz", timeout=30).json()["documents"] == 6
    finally:
        kill(server)


@pytest.mark.system
def test_kill_9_during_searches_loses_nothing(served_index):
    index, port, log = served_index
    base = f"http://127.0.0.1:{port}"
    queries = ["cải cách hành chính", "UBND tỉnh Thái Bình", "hoi nghi", '"phát triển" -TTXVN', "GRDP", "cải cách"]
    server = start_server(index, port, log)
    failures: list[str] = []
    try:
        before = httpx.get(f"{base}/healthz", timeout=30).json()
        expected = {q: [h["id"] for h in httpx.get(f"{base}/api/search", params={"q": q}, timeout=30).json()["hits"]]
                    for q in queries}
        bulk = {"queries": [{"id": i, "q": queries[i % len(queries)] + f" {i}"} for i in range(1000)]}
        started = threading.Barrier(7)
        bulk_answers: list[int] = []

        def hammer(n: int) -> None:
            """Keep searches in flight until the server dies under them."""
            started.wait()
            with httpx.Client(base_url=base, timeout=120) as http:
                while True:
                    try:
                        if n % 2:
                            if http.post("/api/search/bulk", json=bulk).status_code == 200:
                                bulk_answers.append(n)
                        else:
                            http.get("/api/search", params={"q": queries[n % len(queries)]})
                    except httpx.HTTPError as err:
                        failures.append(type(err).__name__)
                        return

        threads = [threading.Thread(target=hammer, args=(n,), daemon=True) for n in range(6)]
        for thread in threads:
            thread.start()
        def batches_answered() -> bool:
            assert not failures, f"a client lost the server before it was killed: {failures}"
            return len(set(bulk_answers)) == 3

        started.wait()
        # Each bulk client has had a batch of 1,000 queries answered, so its next one is in flight.
        wait_until(batches_answered, timeout=120, what="each bulk client to have a batch answered")
    finally:
        kill(server)
    for thread in threads:
        thread.join(timeout=60)
    assert len(failures) == 6, failures  # every client lost its server
    assert set(failures) - {"ConnectError"}, failures  # and some lost it in the middle of a request
    server = start_server(index, port, log)
    try:
        after = httpx.get(f"{base}/healthz", timeout=30).json()
        assert after == before
        for q, ids in expected.items():
            assert [h["id"] for h in httpx.get(f"{base}/api/search", params={"q": q}, timeout=30).json()["hits"]] == ids
    finally:
        kill(server)
    done = run_cli("app", "search", "--index", str(index), "--json", "cải cách")
    assert done.returncode == 0 and [h["id"] for h in json.loads(done.stdout)["hits"]] == expected["cải cách"]
