"""The index folder: generations of Whoosh indexes, a pointer to the live one, and the writer lock.

Layout of an index folder ``DIR``::

    DIR/CURRENT          name of the live generation (replaced atomically)
    DIR/gen-000001/      a complete Whoosh index
    DIR/write.lock       held by the one writer (build, update, delete)

A build writes a new generation and switches CURRENT only once it is committed, so a reader
never sees a half-built index and a killed build leaves only an orphan folder behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from whoosh import index as whoosh_index

from indexer.backend import IndexBusy, IndexMissing, IndexProblem

__all__ = ["IndexBusy", "IndexMissing", "IndexProblem", "current_generation", "open_index", "new_generation",
           "switch_to", "generation_folders", "writer_lock", "latest_commit"]

POINTER = "CURRENT"
LOCK = "write.lock"
PREFIX = "gen-"


def current_generation(root: Path) -> Path | None:
    """The live generation folder, or None when nothing was built yet."""
    try:
        name = (root / POINTER).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise IndexProblem(f"cannot read {root / POINTER}: {err.strerror}") from None
    if not name.startswith(PREFIX) or "/" in name or not (root / name).is_dir():
        raise IndexProblem(f"{root}: the pointer file names a missing generation {name!r}; rebuild the index")
    return root / name


def open_index(root: Path) -> whoosh_index.Index:
    """Open the live generation for reading; raise IndexMissing or IndexProblem with a clear message."""
    gen = current_generation(root)
    if gen is None:
        raise IndexMissing(f"no index in {root}: build one with `python -m indexer build --index {root} corpus/`")
    try:
        return whoosh_index.open_dir(str(gen))
    except Exception as err:  # Whoosh raises many kinds for damaged files
        raise IndexProblem(f"the index in {gen} cannot be opened ({type(err).__name__}); rebuild it") from None


def latest_commit(gen: Path) -> int:
    """The newest Whoosh commit number in a generation folder (cheap: one directory listing)."""
    from whoosh.filedb.filestore import FileStorage
    from whoosh.index import TOC

    # The one private name of Whoosh's used: its own way to find the newest table of contents.
    return TOC._latest_generation(FileStorage(str(gen)), "MAIN")


def new_generation(root: Path) -> Path:
    """Create and return an empty folder for the next generation."""
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name[len(PREFIX):]) for p in generation_folders(root)]
    gen = root / f"{PREFIX}{max(numbers, default=0) + 1:06d}"
    gen.mkdir()
    return gen


def switch_to(root: Path, gen: Path) -> None:
    """Point CURRENT at gen atomically, then remove generations no longer live."""
    tmp = root / f".{POINTER}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(gen.name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, root / POINTER)
    remove_old_generations(root, keep=gen)


def remove_old_generations(root: Path, keep: Path) -> None:
    """Delete generations other than keep; readers still holding one keep their open files (POSIX)."""
    for old in generation_folders(root):
        if old.name != keep.name:
            shutil.rmtree(old, ignore_errors=True)


def generation_folders(root: Path) -> list[Path]:
    """The generation folders of an index folder: gen- and digits only, never a folder of the user's."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)
                  and p.name[len(PREFIX):].isdigit())


@contextlib.contextmanager
def writer_lock(root: Path, wait: bool = False, timeout: float | None = None) -> Iterator[None]:
    """Hold the folder's single-writer lock; raise IndexBusy at once unless wait is set."""
    root.mkdir(parents=True, exist_ok=True)
    handle = open(root / LOCK, "a+")
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait or (deadline is not None and time.monotonic() > deadline):
                    raise IndexBusy(f"another build or update is writing {root}; try again when it ends "
                                    "(or pass --wait)") from None
                time.sleep(0.2)
        yield
    finally:
        handle.close()
