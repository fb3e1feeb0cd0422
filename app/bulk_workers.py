"""Bulk lookups on more than one core: worker processes answer chunks of a large batch beside the caller.

Scoring a query is NumPy on short arrays between Python steps (analysis, planning, lookups), so threads
would queue on the GIL: a process per core is what runs two queries at once. A worker is forked from the
caller, which has pyvi, the index's tables and its caches loaded already; it keeps them and opens the
index files again (a file position must not be shared with the parent). A backend that cannot do that (or
an index that moved on since) gets a new service, which borrows the parent's vocabulary and acronym tables.
A batch is spread only when it is large (MIN_PARALLEL distinct questions): a worker's own first queries
pay for reading the index's per-document arrays, and a small batch is answered before that pays back.

Each question is answered once per batch (repeats share the answer, as SearchService.bulk does), and the
answers come back in the order asked, each a result dict or an error message for that query alone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import zlib
from concurrent.futures import BrokenExecutor, CancelledError, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from app.search import BulkAnswers, QueryError, SearchService, SearchTimeout, bulk_key, bulk_result

# Distinct questions in a batch before worker processes are used, and how many go to a worker at a time
# (large enough that sending them costs little, small enough that the two processes end together).
MIN_PARALLEL = 200
CHUNK = 50

_SERVICE: SearchService | None = None  # a worker process's own service
_PARENT: SearchService | None = None  # the service of the process that forks the workers (read once forked)


@dataclass
class BulkError:
    """A query of a batch that could not be answered (the others are)."""

    message: str
    timeout: bool = False  # the search overran its time bound (the CLI names the line)


def default_workers() -> int:
    """Processes a large batch is spread over: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _start_worker(timeout_s: float | None) -> None:
    """In a new worker: the parent's service made its own (its caches kept, files reopened), or else a new
    service over the same index and settings with the parent's tables. The worker leaves with its parent."""
    global _SERVICE
    # The parent's signal handlers (uvicorn's) would only set a flag here: Ctrl-C and a stop end a worker.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_leave_with, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    parent = _PARENT
    try:
        if parent.after_fork():
            _SERVICE = parent
            return
    except Exception:  # noqa: BLE001 - whatever went wrong reopening, a service of its own still works
        pass
    _SERVICE = SearchService(parent.index_dir, parent.weights, settings=parent.settings, timeout_s=timeout_s)
    adopt = getattr(parent.backend, "lend_tables", None)
    if adopt is not None:
        adopt(_SERVICE.backend)


def _leave_with(parent: int) -> None:
    """End this process once its parent is gone (killed, crashed): it holds the parent's files and sockets."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _answer(service: SearchService, items: list[dict], limit: int,
            stop_at_error: bool = False) -> tuple[str, list[dict | BulkError | None]]:
    """(index version, answer or error of each item) of questions answered one at a time; with stop_at_error,
    the items after the first error are left unanswered (None)."""
    out: list[dict | BulkError | None] = [None] * len(items)
    with service.batch():
        version = service.snapshot().version
        for n, item in enumerate(items):
            try:
                out[n] = service.bulk([item], limit=limit)[0]
            except SearchTimeout:
                out[n] = BulkError(timeout_message(service), timeout=True)
            except QueryError as err:
                out[n] = BulkError(str(err))
            if stop_at_error and isinstance(out[n], BulkError):
                break
    return version, out


def _answer_in_worker(items: list[dict], limit: int, stop_at_error: bool) -> tuple[str, list]:
    """_answer() with the worker's own service."""
    return _answer(_SERVICE, items, limit, stop_at_error)


def timeout_message(service: SearchService) -> str:
    """What to tell the user when a search overran the service's time bound."""
    return (f"the search took longer than {service.timeout_s:g} s and was stopped "
            "(--timeout-ms or TRACUU_SEARCH_TIMEOUT_MS sets the bound; 0 turns it off)")


class BulkPool:
    """Answers batches of bulk queries in this process and, for a large batch, in workers - 1 others.

    A question always goes to the same process (by a hash of its text): what each one has cached answers
    the questions it is sent again (the server's pool lives as long as the app, its workers until idle_s
    without a large batch).
    """

    def __init__(self, service: SearchService, workers: int | None = None, idle_s: float | None = None):
        self.service = service
        self.workers = default_workers() if workers is None else max(1, workers)
        self.idle_s = idle_s
        self._pools: list[ProcessPoolExecutor] = []
        self._lock = threading.Lock()
        self._idle: threading.Timer | None = None
        self._in_flight = 0  # large batches being answered: the idle timer leaves the workers to them

    def close(self) -> None:
        """Stop the worker processes (they are started again by the next large batch)."""
        with self._lock:
            pools, self._pools = self._pools, []
            if self._idle is not None:
                self._idle.cancel()
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BulkPool:
        """The pool; leaving the block stops its workers."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the workers."""
        self.close()

    def _executors(self) -> list[ProcessPoolExecutor]:
        """One single-process executor per worker, forked on first use from this (warmed-up) process."""
        global _PARENT
        with self._lock:
            if not self._pools:
                _PARENT = self.service
                context = multiprocessing.get_context("fork")
                self._pools = [ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker,
                                                   initargs=(self.service.timeout_s,))
                               for _ in range(self.workers - 1)]
            self._in_flight += 1
            return self._pools

    def _done(self) -> None:
        """A large batch is answered: the workers stop idle_s from now unless another comes."""
        with self._lock:
            self._in_flight -= 1
            if self._idle is not None:
                self._idle.cancel()
            if self.idle_s:
                self._idle = threading.Timer(self.idle_s, self._close_if_idle)
                self._idle.daemon = True
                self._idle.start()

    def _close_if_idle(self) -> None:
        """Stop the workers unless a batch is using them."""
        with self._lock:
            if self._in_flight:
                return
            pools, self._pools = self._pools, []
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)

    def answer(self, items: list[dict], limit: int, answered: BulkAnswers | None = None, *,
               stop_at_error: bool = False) -> list[dict | BulkError | None]:
        """The answer (or error) of each item, in order; answered keeps answers across calls (by index version).

        With stop_at_error (an HTTP request fails as a whole) each process stops at its first error, and items
        it did not get to are None.
        """
        answered = BulkAnswers() if answered is None else answered
        with self.service.batch():
            version = self.service.snapshot().version
        keys = [bulk_key(version, item["q"], item.get("filters"), item.get("sort", "relevance"), limit)
                for item in items]
        out: list[dict | BulkError | None] = [None] * len(items)
        todo: dict[tuple | int, list[int]] = {}  # question -> the places that asked it
        for i, key in enumerate(keys):
            found = answered.get(key) if key is not None else None
            if found is not None:
                out[i] = bulk_result(items[i]["id"], found)
            else:
                todo.setdefault(key if key is not None else i, []).append(i)
        questions = [places[0] for places in todo.values()]
        results = self._spread([items[i] for i in questions], limit, stop_at_error)
        for (key, places), (result, answered_at) in zip(todo.items(), results, strict=True):
            # An answer found on another version (the index changed during the batch) is not kept for this one.
            if isinstance(result, dict) and isinstance(key, tuple) and answered_at == version:
                answered.put(key, (result["total"], tuple((h["id"], h["score"], h["title"]) for h in result["hits"]),
                                   result["total_relation"]))
            for i in places:
                out[i] = result if not isinstance(result, dict) else {**result, "id": items[i]["id"]}
        return out

    def _spread(self, items: list[dict], limit: int, stop_at_error: bool) -> list[tuple]:
        """(answer, index version) of distinct questions, each answered by the process its text hashes to."""
        if self.workers < 2 or len(items) < MIN_PARALLEL:
            version, answers = _answer(self.service, items, limit, stop_at_error)
            return [(a, version) for a in answers]
        pools = self._executors()
        try:
            return self._share(pools, items, limit, stop_at_error)
        finally:
            self._done()

    def _share(self, pools: list[ProcessPoolExecutor], items: list[dict], limit: int,
               stop_at_error: bool) -> list[tuple]:
        """_spread() over these worker executors; what a worker fails to answer is answered here."""
        shares: list[list[int]] = [[] for _ in range(self.workers)]
        for i, item in enumerate(items):
            shares[zlib.crc32(item["q"].encode("utf-8", "replace")) % self.workers].append(i)
        sent = []
        for pool, share in zip(pools, shares[1:], strict=True):
            for n in range(0, len(share), CHUNK):
                try:
                    future = pool.submit(_answer_in_worker, [items[i] for i in share[n:n + CHUNK]], limit,
                                         stop_at_error)
                except (BrokenExecutor, RuntimeError):  # broken already, or shut down by the idle timer
                    future = None
                sent.append((share[n:n + CHUNK], future))
        out: list[tuple] = [(None, None)] * len(items)
        mine = shares[0]
        version, answers = _answer(self.service, [items[i] for i in mine], limit, stop_at_error)
        for i, answer in zip(mine, answers, strict=True):
            out[i] = (answer, version)
        broken = False
        for places, future in sent:
            try:
                if future is None:
                    raise CancelledError
                # A chunk takes at most its queries' time bounds (or a minute each without one) and then some.
                version, answers = future.result(timeout=len(places) * (self.service.timeout_s or 60.0) + 60.0)
            except (BrokenExecutor, FutureTimeout, CancelledError, OSError, EOFError):
                # A worker died, hung or could not start: its questions are answered here, the pool replaced.
                broken = True
                version, answers = _answer(self.service, [items[i] for i in places], limit, stop_at_error)
            for i, answer in zip(places, answers, strict=True):
                out[i] = (answer, version)
        if broken:
            self._discard(pools)
        return out

    def _discard(self, pools: list[ProcessPoolExecutor]) -> None:
        """Stop a pool whose worker failed; the next large batch forks new workers."""
        with self._lock:
            if self._pools is pools:
                self._pools = []
        for pool in pools:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
