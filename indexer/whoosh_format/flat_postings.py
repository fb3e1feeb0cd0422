"""Flat postings: a position-free copy of a segment's posting lists as plain arrays, beside Whoosh's files.

Whoosh keeps each list as pickled (and perhaps compressed) blocks of ids, weights and positions behind an
on-disk hash table: reading one term costs a hash walk per segment, a read per block and an unpickle (50-70
us a term at 10,000 articles, most of a cold query). Here every (field, term) of a segment is one row of a
sorted key table and its postings two runs of plain little-endian arrays: one binary search, two reads, no
decoding. The positions of the fields that keep them (the syllable fields, for phrases) are copied too: in
Whoosh's blocks they are one pickle per posting, most of a quoted phrase's time on common syllables.

Files of segment S (Whoosh deletes them with the segment: they match its segment file pattern):

    S.fpk  MAGIC, u32 header length, JSON header {"version", "terms", "absent", "positions"}, zero padding to
           8 bytes, then five arrays of `terms` rows sorted by h1: h1 <u8, h2 <u8 (the two halves of a
           BLAKE2b-128 digest of field + NUL + term bytes: h1 to search, h2 to confirm), start <i8 (first
           posting), count <i4 (document frequency, deleted documents included as in Whoosh), then (version 2)
           pstart <i8 (first position, -1 for a term whose positions are not copied)
    S.fpd  segment-local docnums, <i4, each list ascending
    S.fpt  weights (term frequencies), <u2, in the same order
    S.fpp  positions, <u2: of each posting of a copied term, its term-frequency many positions, ascending

Scored fields are copied (the text fields), each only when every weight of it is a whole number below
65,536 (what our analyzers give); the header lists the fields of the segment not copied ("absent"), and a
reader reads those from Whoosh's blocks.
A term's positions are copied when its field keeps Positions, each posting's count of them is its weight,
and all are below 65,536 (else phrases read that term's from Whoosh's blocks). Version 1 files (no
positions) are still read. FlatWriter writes a segment's copy from the chunks the segment writer encodes
(columns._write_field); FlatPostings reads it. tests/test_flat_postings.py checks both against Whoosh's own
reading of the blocks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import struct

import numpy as np
from whoosh.codec.base import Segment
from whoosh.filedb.filestore import FileStorage

from indexer.whoosh_format.blocks import position_arrays

MAGIC = b"TRFP"
VERSION = 2
READABLE_VERSIONS = (1, 2)
KEYS_EXT, DOCS_EXT, TFS_EXT, POSITIONS_EXT = ".fpk", ".fpd", ".fpt", ".fpp"
_MAX_POSITION = np.iinfo(np.uint16).max
_HEADER_LENGTH = struct.Struct("<I")
_MAX_TF = np.iinfo(np.uint16).max


def term_digest(fieldname: str, term: bytes) -> tuple[int, int]:
    """(h1, h2): the 128-bit BLAKE2b digest of a (field, term bytes) key, as two unsigned 64-bit halves."""
    digest = hashlib.blake2b(fieldname.encode() + b"\x00" + term, digest_size=16).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")


class FlatWriter:
    """Writes the flat copy of one segment's postings, field after field, chunk after chunk."""

    def __init__(self, storage: FileStorage, segment: Segment):
        """Create the segment's docs and weights files (the key table is written by close()); a storage that is
        not a folder (Whoosh's RamStorage) gets no flat copy."""
        self.storage, self.segment = storage, segment
        self.enabled = isinstance(storage, FileStorage)  # RamStorage's folder is "": the working directory
        self._docs = open(self._path(DOCS_EXT), "wb") if self.enabled else None  # noqa: SIM115 - see close()
        self._tfs = open(self._path(TFS_EXT), "wb") if self.enabled else None  # noqa: SIM115
        self._pos = open(self._path(POSITIONS_EXT), "wb") if self.enabled else None  # noqa: SIM115
        self._digests: list[bytes] = []
        self._starts: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._pstarts: list[np.ndarray] = []
        self._absent: list[str] = []
        self._written = 0  # postings written so far
        self._positions_written = 0
        # A field being written: its digests, starts and counts are kept apart until it ends, so that a field
        # whose weights do not fit is dropped whole (its postings stay in the files, unreferenced).
        self._field: str | None = None
        self._field_positions = False
        self._pending: tuple[list[bytes], list[np.ndarray], list[np.ndarray], list[np.ndarray]] | None = None

    def _path(self, ext: str) -> str:
        """The path of one of the segment's flat files."""
        return os.path.join(self.storage.folder, self.segment.make_filename(ext))

    def start_field(self, fieldname: str, positions: bool = False) -> None:
        """Begin a field: its terms come next, in any order; positions: its values are Positions to copy."""
        self.end_field()
        self._field, self._field_positions = fieldname, positions
        self._pending = ([], [], [], []) if self.enabled else None

    def skip_field(self, fieldname: str) -> None:
        """A field of the segment that is not copied: readers read it from Whoosh's blocks."""
        self.end_field()
        self._absent.append(fieldname)

    def add_chunk(self, keys: list[bytes], bounds: np.ndarray, docs: np.ndarray, weights: np.ndarray,
                  values: list[bytes] | None = None) -> None:
        """The postings of some terms of the current field: term t's are docs/weights[bounds[t]:bounds[t + 1]]
        (and, in a field started with positions, their Positions values[bounds[t]:bounds[t + 1]])."""
        if self._pending is None:
            return  # the field was dropped: a weight did not fit
        tfs = np.asarray(weights)
        if len(tfs) and (tfs.min() < 0 or tfs.max() > _MAX_TF or not np.array_equal(tfs, np.round(tfs))):
            self._pending = None
            return
        digests, starts, counts, pstarts = self._pending
        prefix = self._field.encode() + b"\x00"
        blake = hashlib.blake2b
        digests.append(b"".join(blake(prefix + key, digest_size=16).digest() for key in keys))
        bounds = np.asarray(bounds, dtype=np.int64)
        starts.append(bounds[:-1] + self._written)
        counts.append(np.diff(bounds).astype(np.int32))
        pstarts.append(self._copy_positions(bounds, tfs, values))
        self._docs.write(np.asarray(docs, dtype="<i4").tobytes())
        self._tfs.write(tfs.astype("<u2").tobytes())
        self._written += int(bounds[-1])

    def _copy_positions(self, bounds: np.ndarray, tfs: np.ndarray, values: list[bytes] | None) -> np.ndarray:
        """Write the chunk's positions when they can be copied; each term's first position (all -1 if not)."""
        none = np.full(len(bounds) - 1, -1, dtype=np.int64)
        if not self._field_positions or values is None or len(values) != len(tfs):
            return none
        try:
            counts, positions = position_arrays(values)
        except ValueError:
            return none
        # A posting's weight must be its count of positions: readers find a document's positions by the weights.
        if not np.array_equal(counts, tfs) or (len(positions) and int(positions.max()) > _MAX_POSITION):
            return none
        first = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=first[1:])
        self._pos.write(positions.astype("<u2").tobytes())
        out = first[bounds[:-1]] + self._positions_written
        self._positions_written += int(first[-1])
        return out

    def end_field(self) -> None:
        """Keep the field just written, or list it as absent when a weight did not fit."""
        if self._field is not None:
            if self._pending is not None:
                digests, starts, counts, pstarts = self._pending
                self._digests.extend(digests)
                self._starts.extend(starts)
                self._counts.extend(counts)
                self._pstarts.extend(pstarts)
            elif self.enabled:
                self._absent.append(self._field)
        self._field, self._pending = None, None

    def close(self) -> None:
        """Write the key table, sorted by digest, and close the files."""
        self.end_field()
        if not self.enabled:
            return
        for fh in (self._docs, self._tfs, self._pos):
            fh.close()
        digests = np.frombuffer(b"".join(self._digests), dtype="<u8").reshape(-1, 2)
        starts = np.concatenate(self._starts) if self._starts else np.empty(0, dtype=np.int64)
        counts = np.concatenate(self._counts) if self._counts else np.empty(0, dtype=np.int32)
        pstarts = np.concatenate(self._pstarts) if self._pstarts else np.empty(0, dtype=np.int64)
        order = np.lexsort((digests[:, 1], digests[:, 0]))
        header = json.dumps({"version": VERSION, "terms": len(order), "absent": self._absent,
                             "positions": self._positions_written}).encode()
        head = MAGIC + _HEADER_LENGTH.pack(len(header)) + header
        head += b"\x00" * (-len(head) % 8)
        with open(self._path(KEYS_EXT), "wb") as fh:
            fh.write(head)
            for column in (digests[order, 0], digests[order, 1], starts[order].astype("<i8"),
                           counts[order].astype("<i4"), pstarts[order].astype("<i8")):
                fh.write(np.ascontiguousarray(column).tobytes())

    def cancel(self) -> None:
        """Close and delete what was written: the segment is read through Whoosh's blocks instead."""
        if not self.enabled:
            return
        for fh in (self._docs, self._tfs, self._pos):
            fh.close()
        for ext in (KEYS_EXT, DOCS_EXT, TFS_EXT, POSITIONS_EXT):
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._path(ext))


class FlatPostings:
    """The flat copy of one segment's postings, read with one binary search and two reads a term."""

    def __init__(self, folder: str, segment: Segment):
        """Open the segment's flat files (FileNotFoundError when it has none, ValueError when damaged)."""
        keys_path = os.path.join(folder, segment.make_filename(KEYS_EXT))
        with open(keys_path, "rb") as fh:
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            if self._map[:4] != MAGIC:
                raise ValueError(f"{keys_path}: not a flat postings key table")
            (size,) = _HEADER_LENGTH.unpack_from(self._map, 4)
            header = json.loads(self._map[8:8 + size])
            version = header.get("version")
            if version not in READABLE_VERSIONS:
                raise ValueError(f"{keys_path}: flat postings version {version}")
            n = int(header["terms"])
            at = 8 + size + (-(8 + size) % 8)
            row_bytes = 28 if version == 1 else 36
            if len(self._map) != at + n * row_bytes:
                raise ValueError(f"{keys_path}: {len(self._map)} bytes, not the {at + n * row_bytes} of {n} terms")
            self.absent: frozenset[str] = frozenset(header["absent"])
            self.h1 = np.frombuffer(self._map, dtype="<u8", count=n, offset=at)
            self.h2 = np.frombuffer(self._map, dtype="<u8", count=n, offset=at + 8 * n)
            self.start = np.frombuffer(self._map, dtype="<i8", count=n, offset=at + 16 * n)
            self.count = np.frombuffer(self._map, dtype="<i4", count=n, offset=at + 24 * n)
            self.pstart = np.frombuffer(self._map, dtype="<i8", count=n, offset=at + 28 * n) if version > 1 \
                else np.full(n, -1, dtype=np.int64)
            self._docs = self._tfs = self._pos = -1
            self._docs = os.open(os.path.join(folder, segment.make_filename(DOCS_EXT)), os.O_RDONLY)
            self._tfs = os.open(os.path.join(folder, segment.make_filename(TFS_EXT)), os.O_RDONLY)
            # Every list must lie inside the postings files (a cut or lost file reads as no copy at all).
            if n and (int(self.start.min()) < 0 or int(self.count.min()) < 0):
                raise ValueError(f"{keys_path}: negative offsets")
            end = int((self.start + self.count).max()) if n else 0
            if os.fstat(self._docs).st_size < 4 * end or os.fstat(self._tfs).st_size < 2 * end:
                raise ValueError(f"{keys_path}: its postings files are shorter than its {end} postings")
            if version > 1:
                self._pos = os.open(os.path.join(folder, segment.make_filename(POSITIONS_EXT)), os.O_RDONLY)
                self.positions_count = int(header["positions"])
                if os.fstat(self._pos).st_size != 2 * self.positions_count or (
                        n and int(self.pstart.max()) >= max(1, self.positions_count)):
                    raise ValueError(f"{keys_path}: its positions file does not hold its {self.positions_count}")
        except BaseException:
            self.close()
            raise

    def covers(self, fieldname: str) -> bool:
        """Whether the copy answers for fieldname (a field the segment has no posting of included)."""
        return fieldname not in self.absent

    def row(self, fieldname: str, term: bytes) -> int:
        """The key table row of (field, term), or -1 when the segment has no such term."""
        return self.row_of(*term_digest(fieldname, term))

    def row_of(self, h1: int, h2: int) -> int:
        """row() of a key by its term_digest() (the same in every segment: worked out once for all)."""
        if self.h1 is None:
            raise ValueError("flat postings read after close()")
        i = int(self.h1.searchsorted(np.uint64(h1)))
        n = len(self.h1)
        while i < n and int(self.h1[i]) == h1:  # equal first halves: as good as never, but possible
            if int(self.h2[i]) == h2:
                return i
            i += 1
        return -1

    def doc_frequency(self, row: int) -> int:
        """Documents of a row's term (deleted ones included), 0 for row -1."""
        return int(self.count[row]) if row >= 0 else 0

    def postings(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(segment-local docnums <i4, weights float32) of a row's term."""
        start, count = int(self.start[row]), int(self.count[row])
        docs = np.frombuffer(os.pread(self._docs, 4 * count, 4 * start), dtype="<i4")
        tfs = np.frombuffer(os.pread(self._tfs, 2 * count, 2 * start), dtype="<u2").astype(np.float32)
        if len(docs) != count or len(tfs) != count:
            raise ValueError(f"flat postings: {count} postings from {start} are past the end of the files")
        return docs, tfs

    def has_positions(self, row: int) -> bool:
        """Whether a row's positions are in the copy (no: read them from Whoosh's blocks)."""
        return row >= 0 and int(self.pstart[row]) >= 0

    def positions(self, row: int, count: int) -> np.ndarray:
        """Every position of a row's term, posting after posting: count of them, the sum of its weights."""
        start = int(self.pstart[row])
        data = os.pread(self._pos, 2 * count, 2 * start) if start >= 0 else b""
        if len(data) != 2 * count:
            raise ValueError(f"flat postings: {count} positions from {start} are not in the positions file")
        return np.frombuffer(data, dtype="<u2").astype(np.int64)

    def close(self) -> None:
        """Close the files (arrays already returned stay valid: they are copies). A read after this fails
        (the descriptors are set to -1 first: a number reused by another file must not be read)."""
        fds = (getattr(self, "_docs", -1), getattr(self, "_tfs", -1), getattr(self, "_pos", -1))
        self._docs = self._tfs = self._pos = -1
        for fd in fds:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.h1 = self.h2 = self.start = self.count = self.pstart = None
        with contextlib.suppress(BufferError):  # a view still held elsewhere: the map goes with it
            self._map.close()


def open_flat(folder: str, segment: Segment) -> FlatPostings | None:
    """The segment's flat postings, or None when it has none (written by Whoosh's own writer, or before them)."""
    try:
        return FlatPostings(folder, segment)
    except Exception:  # noqa: BLE001 - missing, cut, garbled or unreadable: Whoosh's blocks are still there
        return None
