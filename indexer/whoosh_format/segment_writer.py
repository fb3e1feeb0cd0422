"""A Whoosh segment writer that pays per document and per term, not per posting.

Whoosh's SegmentWriter turns every posting (about 1,000 per news article) into a tuple, sorts
them all, spills them to disk with pickle and merges them back, then adds them one at a time to
a block writer that asks the per-document reader for the field length of each. Here the
postings of a document go into per-field columns (arrays of term numbers, document numbers and
weights, and the posting values), one NumPy sort per field groups them by term, and each block is
encoded whole. The files are Whoosh's own (W3 codec): readers, updates, deletions and merges are
unchanged, and tests/test_fastwriter.py checks that both writers store the same postings.

When the columns pass the memory budget they are sorted into a run on disk (a file per field, as
arrays); the segment is written at the end from all runs, merged term by term a chunk at a time,
so a process writes one segment whatever the size of the build, in bounded memory.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import pickle
import queue
import zlib
from array import array
from collections import Counter
from collections.abc import Iterator
from hashlib import md5
from itertools import repeat
from pickle import dumps

import numpy as np
from whoosh import formats, multiproc
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3TermInfo, _lenfield
from whoosh.filedb import filetables
from whoosh.system import pack_int, pack_long, pack_ushort, unpack_uint
from whoosh.util import random_name
from whoosh.writing import SegmentWriter

from indexer.analysis import VietnameseTokenizer

HEADER = b"W3Bl"  # whoosh3.WHOOSH3_HEADER_MAGIC: starts every posting list in the postings file
BLOCK = 128  # postings per block, as W3Codec writes them
# zlib level of the blocks that are compressed (W3Codec uses 3): on the blocks of 1,000 news articles level 1
# takes a third less time (47 -> 31 us a block) for 3 % more bytes.
COMPRESSION = 1
# Blocks whose pickle is shorter than this are stored as they are: they save few bytes, and most terms have one
# or two postings per segment (readers check each block's flag). 2,000 articles: 512 instead of 0 saves 20 % of
# the time writing the segment for 6 % more bytes.
COMPRESS_MIN_BYTES = 512
# zlib.compress() sets up a 32 KB window and 256 KB of tables, more than malloc keeps at hand: a block-sized
# 4 KB window starts faster. zlib.decompress reads any window size, so these are still plain W3 blocks.
_ZLIB_WINDOW_BITS = 12
_ZLIB_MEM_LEVEL = 8


def _compress(data: bytes) -> bytes:
    """zlib-compress one block with a window sized for blocks."""
    c = zlib.compressobj(COMPRESSION, zlib.DEFLATED, _ZLIB_WINDOW_BITS, _ZLIB_MEM_LEVEL)
    return c.compress(data) + c.flush()


_TERMINFO = W3TermInfo._struct
# Postings of a field turned into Python lists at a time when a segment is written (bounds the memory).
_CHUNK_POSTINGS = 1 << 18
# Estimated bytes of one buffered posting: term number, document number, weight, and the value.
_POSTING_BYTES = {"none": 12, "freq": 16, "list": 24}
_TERM_BYTES = 120  # a term's dictionary entry and its bytes


def _value_kind(fmt: formats.Format) -> str:
    """How a format's posting values are kept: none, a frequency (rebuilt on writing), or as bytes."""
    if fmt.fixed_value_size() == 0:
        return "none"
    if type(fmt) is formats.Frequency:
        return "freq"
    return "list"


class _TermsWriter(filetables.OrderedHashWriter):
    """Whoosh's terms file writer taking a chunk of terms per call, with its hash index kept in arrays.

    OrderedHashWriter writes every term with three writes and two tell() calls and remembers it as a
    tuple (about 120 bytes: 250 MB for the 2 million terms of a 75,000-article segment); here a chunk is
    one write and a term is 12 bytes until the hash tables are written. The file is the same format.
    """

    @classmethod
    def adopt(cls, writer: filetables.OrderedHashWriter) -> _TermsWriter:
        """Turn the (still empty) terms writer a W3FieldWriter made into one of these."""
        writer.__class__ = cls
        writer._hashes = array("I")
        writer._positions = array("q")
        return writer

    def add(self, key: bytes, value: bytes) -> None:
        """Add one term (Whoosh's interface)."""
        self.add_sorted([key], [value])

    def add_sorted(self, keys: list[bytes], values: list[bytes]) -> None:
        """Add terms in increasing order, each after the last one added, with their values."""
        if keys[0] <= self.lastkey:
            raise ValueError(f"Keys must increase: {self.lastkey!r}..{keys[0]!r}")
        pos = self.dbfile.tell()
        parts, positions = [], []
        pack_lengths = filetables._lengths.pack
        for key, value in zip(keys, values):
            positions.append(pos)
            parts += (pack_lengths(len(key), len(value)), key, value)
            pos += 8 + len(key) + len(value)
        self.dbfile.write(b"".join(parts))
        self._positions.extend(positions)
        # filetables.md5_hash: the low 32 bits of the MD5 digest, read as one big-endian number
        self._hashes.extend([int.from_bytes(md5(key, usedforsecurity=False).digest()[12:], "big") for key in keys])
        self.lastkey = keys[-1]

    def _write_hashes(self) -> None:
        """Write the 256 linear-probing tables (twice as many slots as keys), one write per table."""
        hashes = np.frombuffer(self._hashes, dtype=np.uint32).astype(np.int64)
        positions = np.frombuffer(self._positions, dtype=np.int64)
        buckets = hashes & 255
        order = np.argsort(buckets, kind="stable")  # each table takes its keys in the order they came
        starts = np.searchsorted(buckets[order], np.arange(257))
        for b in range(256):
            idx = order[starts[b]:starts[b + 1]]
            numslots = 2 * len(idx)
            self.directory.append((self.dbfile.tell(), numslots))
            if not numslots:
                continue
            table = np.zeros(numslots, dtype=[("hash", ">u4"), ("pos", ">i8")])
            home = (hashes[idx] >> 8) % numslots
            # First come, first served at their own slot; the rest probe forward to the next free slot, so
            # every slot between a key's own and the one it got is taken: lookups find it.
            slots, first = np.unique(home, return_index=True)
            table["hash"][slots] = hashes[idx[first]]
            table["pos"][slots] = positions[idx[first]]
            rest = np.ones(len(idx), dtype=bool)
            rest[first] = False
            rest = np.flatnonzero(rest)
            if len(rest):
                taken = bytearray(numslots)
                for slot in slots.tolist():
                    taken[slot] = 1
                placed = []
                for slot in home[rest].tolist():
                    while taken[slot]:
                        slot = (slot + 1) % numslots
                    taken[slot] = 1
                    placed.append(slot)
                table["hash"][placed] = hashes[idx[rest]]
                table["pos"][placed] = positions[idx[rest]]
            self.dbfile.write(table.tobytes())

    def _write_extras(self) -> None:
        """Write the extras and the positions of the terms, as OrderedHashWriter does."""
        top = self._positions[-1] if self._positions else 0
        self.index.array = array("H" if top < 2**16 else "i" if top < 2**31 else "I" if top < 2**32 else "q",
                                 self._positions)
        super()._write_extras()


class _FieldColumns:
    """The buffered postings of one field, in the order they were added (document order)."""

    __slots__ = ("kind", "fixed_size", "terms", "next_tid", "tids", "docs", "weights", "extra")

    def __init__(self, fmt: formats.Format):
        self.kind = _value_kind(fmt)
        self.fixed_size = fmt.fixed_value_size()
        # term -> term number. A posting offers the next number and keeps it only for a new term, so the
        # numbers have gaps but a document's terms are numbered by one C-level map() (see _MemoryRun).
        self.terms: dict[bytes, int] = {}
        self.next_tid = 0
        self.tids = array("I")
        self.docs = array("I")
        self.weights = array("f")
        self.extra = self.new_extra(self.kind)

    @staticmethod
    def new_extra(kind: str) -> array | list | None:
        """Empty storage for what a posting holds besides its weight: frequencies, values (bytes) or nothing."""
        return array("I") if kind == "freq" else [] if kind == "list" else None


class _MemoryRun:
    """One field's postings grouped by term (terms in byte order, each term's postings in document order)."""

    def __init__(self, cols: _FieldColumns):
        keys = list(cols.terms)
        self.nkeys = len(keys)
        tids = np.fromiter(cols.terms.values(), dtype=np.int64, count=self.nkeys)
        cols.terms = {}
        order = sorted(range(self.nkeys), key=keys.__getitem__)
        self.sorted_keys = [keys[i] for i in order]
        del keys
        rank = np.empty(cols.next_tid, dtype=np.int64)  # by term number (numbers no term kept stay unset)
        rank[tids[order]] = np.arange(self.nkeys)
        del order, tids
        by_term = rank[np.frombuffer(cols.tids, dtype=np.uint32)]
        cols.tids, cols.next_tid = array("I"), 0
        del rank
        # Stable: within a term the postings stay in document order.
        perm = np.argsort(by_term, kind="stable")
        self.bounds = np.zeros(self.nkeys + 1, dtype=np.int64)
        np.cumsum(np.bincount(by_term, minlength=self.nkeys), out=self.bounds[1:])
        del by_term
        self.docs = np.frombuffer(cols.docs, dtype=np.uint32)[perm]
        self.weights = np.frombuffer(cols.weights, dtype=np.float32)[perm]
        cols.docs, cols.weights = array("I"), array("f")
        self.freqs = self.values = None
        if cols.kind == "freq":
            self.freqs = np.frombuffer(cols.extra, dtype=np.uint32)[perm]
        elif cols.kind == "list":
            self.values = np.array(cols.extra, dtype=object)[perm]
        cols.extra = _FieldColumns.new_extra(cols.kind)

    def keys(self, a: int, b: int) -> list[bytes]:
        """The terms a to b (exclusive), in byte order."""
        return self.sorted_keys[a:b]

    def slice(self, p0: int, p1: int) -> tuple:
        """(docs, weights, frequencies or None, values or None) of the postings p0 to p1."""
        return (self.docs[p0:p1], self.weights[p0:p1], None if self.freqs is None else self.freqs[p0:p1],
                None if self.values is None else self.values[p0:p1].tolist())

    def remove(self) -> None:
        """Nothing to remove: the run lives in memory."""


class _FileRun:
    """A _MemoryRun spilled to a temporary file, read back a slice at a time."""

    _SECTIONS = ("key_blob", "key_offsets", "bounds", "docs", "weights", "freqs", "value_blob", "value_offsets")

    def __init__(self, run: _MemoryRun, path: str):
        self.path = path
        self.nkeys = run.nkeys
        self.bounds = run.bounds
        keys = run.sorted_keys
        arrays = {"key_blob": b"".join(keys), "key_offsets": _offsets(keys), "docs": run.docs,
                  "weights": run.weights, "freqs": run.freqs}
        if run.values is not None:
            values = run.values.tolist()
            arrays["value_blob"], arrays["value_offsets"] = b"".join(values), _offsets(values)
        self.sections: dict[str, tuple[int, np.dtype]] = {}
        with open(path, "wb") as out:
            for name in self._SECTIONS:
                data = arrays.get(name)
                if data is None:
                    continue
                self.sections[name] = (out.tell(), np.dtype(np.uint8) if isinstance(data, bytes) else data.dtype)
                out.write(data if isinstance(data, bytes) else np.ascontiguousarray(data).data)
        self.key_offsets = arrays["key_offsets"]
        self._file = None

    def _read(self, name: str, start: int, stop: int):
        """Items start to stop of a section (bytes for the blobs, an array otherwise)."""
        if self._file is None:
            self._file = open(self.path, "rb")  # noqa: SIM115 - kept open while its field is written
        offset, dtype = self.sections[name]
        data = os.pread(self._file.fileno(), (stop - start) * dtype.itemsize, offset + start * dtype.itemsize)
        return data if name.endswith("_blob") else np.frombuffer(data, dtype=dtype)

    def keys(self, a: int, b: int) -> list[bytes]:
        """The terms a to b (exclusive), in byte order."""
        offs = (self.key_offsets[a:b + 1] - self.key_offsets[a]).tolist()
        blob = self._read("key_blob", int(self.key_offsets[a]), int(self.key_offsets[b]))
        return [blob[x:y] for x, y in zip(offs, offs[1:])]

    def slice(self, p0: int, p1: int) -> tuple:
        """(docs, weights, frequencies or None, values or None) of the postings p0 to p1."""
        values = None
        if "value_offsets" in self.sections:
            offsets = self._read("value_offsets", p0, p1 + 1)
            blob = self._read("value_blob", int(offsets[0]), int(offsets[-1]))
            offs = (offsets - offsets[0]).tolist()
            values = [blob[x:y] for x, y in zip(offs, offs[1:])]
        return (self._read("docs", p0, p1), self._read("weights", p0, p1),
                self._read("freqs", p0, p1) if "freqs" in self.sections else None, values)

    def remove(self) -> None:
        """Close and delete the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)


def _offsets(items: list[bytes]) -> np.ndarray:
    """Where each of items starts in b"".join(items), and where the last ends."""
    out = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, items), dtype=np.int64, count=len(items)), out=out[1:])
    return out


class ColumnPool:
    """Postings of one segment, columnar per field; Whoosh's PostingPool interface where it is used.

    Past its budget the pool sorts what it holds into runs on disk (one file per field); the segment is
    then written from all runs at once, so a process writes one segment however many articles it gets.
    """

    def __init__(self, schema, tempdir: str | None = None, limit_bytes: int = 128 * 2**20):
        self.schema = schema
        self.tempdir = tempdir
        self.limit_bytes = limit_bytes
        self.fields: dict[str, _FieldColumns] = {}
        self.runs: dict[str, list[_FileRun]] = {}
        self.fieldnames: set[str] = set()  # read by Whoosh's multiprocessing writer
        self.bytes = 0

    def _columns(self, fieldname: str) -> _FieldColumns:
        """The columns of a field, created on first use."""
        cols = self.fields.get(fieldname)
        if cols is None:
            cols = self.fields[fieldname] = _FieldColumns(self.schema[fieldname].format)
            self.fieldnames.add(fieldname)
        return cols

    def add_document_field(self, fieldname: str, docnum: int, terms: list[bytes], weights: list[float],
                           extra: list) -> None:
        """Add the postings of one field of one document: terms with their weights and frequencies/values."""
        cols = self._columns(fieldname)
        ids = cols.terms
        known = len(ids)
        first = cols.next_tid
        cols.next_tid += len(terms)
        cols.tids.extend(map(ids.setdefault, terms, range(first, cols.next_tid)))
        cols.docs.extend(repeat(docnum, len(terms)))
        cols.weights.extend(weights)
        if cols.extra is not None:
            cols.extra.extend(extra)
        self.bytes += _POSTING_BYTES[cols.kind] * len(terms) + _TERM_BYTES * (len(ids) - known)

    def add(self, item: tuple) -> None:
        """Add one (fieldname, term bytes, docnum, weight, value bytes) posting, as Whoosh's pool takes it."""
        fieldname, tbytes, docnum, weight, vbytes = item
        if docnum < 0:
            return  # Whoosh's marker for spelling words; no field here keeps a spelling graph
        cols = self._columns(fieldname)
        extra = None
        if cols.kind == "freq":
            extra = [unpack_uint(vbytes)[0]]
        elif cols.kind == "list":
            extra = [vbytes or b""]
        self.add_document_field(fieldname, docnum, [tbytes], [weight], extra)
        if self.bytes > self.limit_bytes:
            self.save()

    def iter_postings(self):
        """Whoosh's interface for reading the pool back; this pool is written by write_segment instead."""
        raise NotImplementedError("ColumnPool is written with write_segment()")

    def save(self) -> None:
        """Sort the buffered postings of every field into a run on disk and empty the buffer."""
        if self.tempdir is None:
            return  # no place for runs: the segment is written from memory
        for fieldname, cols in self.fields.items():
            if cols.terms:
                path = os.path.join(self.tempdir, f"{random_name()}.{fieldname}.run")
                self.runs.setdefault(fieldname, []).append(_FileRun(_MemoryRun(cols), path))
        self.bytes = 0

    def cleanup(self) -> None:
        """Drop the buffered postings and delete the runs."""
        self.fields.clear()
        for runs in self.runs.values():
            for run in runs:
                run.remove()
        self.runs.clear()
        self.bytes = 0

    def write_segment(self, fieldwriter, lengths) -> None:
        """Write every field's postings into a segment's terms and postings files, then drop them."""
        for fieldname in sorted(set(self.fields) | set(self.runs)):
            runs: list = self.runs.pop(fieldname, [])
            cols = self.fields.pop(fieldname, None)
            if cols is not None and cols.terms:
                runs.append(_MemoryRun(cols))
            fieldobj = self.schema[fieldname]
            try:
                if runs:
                    _write_field(fieldwriter, fieldname, fieldobj, runs, _length_bytes(lengths, fieldname))
            finally:
                for run in runs:
                    run.remove()
        self.bytes = 0


def _length_bytes(lengths, fieldname: str) -> np.ndarray | None:
    """The length byte of fieldname for every document of the segment (None when it keeps no lengths)."""
    if lengths is None:
        return None
    col = lengths._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    if col is None:
        return None
    return np.fromiter(iter(col), dtype=np.uint8, count=lengths.doc_count_all())


def _chunks_of_one(run) -> Iterator[tuple]:
    """(terms, bounds, docs, weights, freqs, values) of whole terms, about _CHUNK_POSTINGS postings at a time."""
    term = 0
    while term < run.nkeys:
        p0 = int(run.bounds[term])
        last = int(np.searchsorted(run.bounds, p0 + _CHUNK_POSTINGS, side="right")) - 1
        last = min(max(last, term + 1), run.nkeys)
        p1 = int(run.bounds[last])
        yield (run.keys(term, last), run.bounds[term:last + 1] - p0, *run.slice(p0, p1))
        term = last


def _run_keys(run, r: int, batch: int = 1 << 16) -> Iterator[tuple[bytes, int]]:
    """(term, r) for every term of a run, in byte order."""
    for a in range(0, run.nkeys, batch):
        for key in run.keys(a, min(a + batch, run.nkeys)):
            yield key, r


def _merged_chunks(runs: list) -> Iterator[tuple]:
    """Like _chunks_of_one over the union of several runs' terms; a term's postings come run after run."""
    start = [0] * len(runs)  # next term of each run not yet in a chunk
    members: list[list[int]] = [[] for _ in runs]  # per run: the chunk's term number of each term it has
    keys: list[bytes] = []

    def chunk() -> tuple:
        parts, owners = [], []
        for r, run in enumerate(runs):
            if not members[r]:
                continue
            a, b = start[r], start[r] + len(members[r])
            parts.append(run.slice(int(run.bounds[a]), int(run.bounds[b])))
            owners.append(np.repeat(np.array(members[r], dtype=np.int64), np.diff(run.bounds[a:b + 1])))
            start[r] = b
            members[r] = []
        owner = np.concatenate(owners)
        perm = np.argsort(owner, kind="stable")  # runs are in document order: stable keeps each term's in order
        bounds = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner, minlength=len(keys)), out=bounds[1:])
        docs = np.concatenate([p[0] for p in parts])[perm]
        weights = np.concatenate([p[1] for p in parts])[perm]
        freqs = None if parts[0][2] is None else np.concatenate([p[2] for p in parts])[perm]
        values = None
        if parts[0][3] is not None:
            values = np.array([v for p in parts for v in p[3]], dtype=object)[perm].tolist()
        return keys, bounds, docs, weights, freqs, values

    for key, r in heapq.merge(*(_run_keys(run, r) for r, run in enumerate(runs))):
        if not keys or keys[-1] != key:
            if len(keys) % 1024 == 0 and keys and sum(
                    int(run.bounds[start[i] + len(members[i])] - run.bounds[start[i]])
                    for i, run in enumerate(runs)) >= _CHUNK_POSTINGS:
                yield chunk()
                keys = []
            keys.append(key)
        members[r].append(len(keys) - 1)
    if keys:
        yield chunk()


def _write_field(fieldwriter, fieldname: str, fieldobj, runs: list, lengths: np.ndarray | None) -> None:
    """Write one field's posting lists from its sorted runs, term by term in byte order, as W3FieldWriter would."""
    fieldwriter.start_field(fieldname, fieldobj)
    fmt = fieldobj.format
    kind, fixed_size = _value_kind(fmt), fmt.fixed_value_size()
    chunks = _chunks_of_one(runs[0]) if len(runs) == 1 else _merged_chunks(runs)
    prefix = pack_ushort(fieldwriter._fieldid)
    postfile = fieldwriter._postfile
    tindex: _TermsWriter = fieldwriter._tindex
    pos = postfile.tell()
    for keys, bounds, docs, weights, freqs, values in chunks:
        ids_l = docs.tolist()
        # Delta-encoded ids, as W3 blocks hold them (each block's first id is absolute, set per block below).
        deltas = np.empty(len(docs), dtype=np.int64)
        deltas[0] = docs[0]
        np.subtract(docs[1:], docs[:-1], out=deltas[1:], dtype=np.int64)
        d_l = deltas.tolist()
        w_l = weights.tolist()
        len_l = lengths[docs].tolist() if lengths is not None else [0] * len(docs)
        if kind == "freq":
            v_bytes = freqs.astype(">u4").tobytes()  # Frequency values: big-endian uints, joined
        b_l = bounds.tolist()
        out: list[bytes] = []
        infos: list[bytes] = []
        for t in range(len(keys)):
            start, end = b_l[t], b_l[t + 1]
            if end - start == 1:
                # One posting (about half the terms of a segment): the same block as below, without its loops.
                doc, w, lb = ids_l[start], w_l[start], len_l[start]
                if kind == "freq":
                    block_values = v_bytes[4 * start:4 * start + 4]
                elif kind == "list":
                    block_values = (values[start],) if fixed_size is None else values[start]
                else:
                    block_values = None
                data = dumps(((doc,), None if w == 1.0 else w, block_values), 2)
                comp = 0
                if len(data) >= COMPRESS_MIN_BYTES:
                    data = _compress(data)
                    comp = COMPRESSION
                info = dumps((1, doc, w, comp, lb, lb), 2)
                size = len(info) + len(data)
                out += (HEADER, pack_int(-size), info, data)
                infos.append(_TERMINFO.pack(0, w, 1, lb, lb, w, doc, doc) + pack_long(pos) + pack_int(8 + size))
                pos += 8 + size
                continue
            term_start = pos
            out.append(HEADER)
            pos += 4
            total_weight = 0.0
            max_weight = 0.0
            min_len = max_len = 0
            for bs in range(start, end, BLOCK):
                be = min(bs + BLOCK, end)
                block_ids = d_l[bs:be]
                block_ids[0] = ids_l[bs]
                ws = w_l[bs:be]
                w_hi = max(ws)
                w_lo = min(ws)
                if w_lo == w_hi:
                    mini_weights = None if w_hi == 1.0 else w_hi
                else:
                    mini_weights = tuple(ws)
                if kind == "freq":
                    block_values = v_bytes[4 * bs:4 * be]
                elif kind == "list":
                    block_values = values[bs:be]
                    block_values = tuple(block_values) if fixed_size is None else b"".join(block_values)
                else:
                    block_values = None
                data = dumps((tuple(block_ids), mini_weights, block_values), 2)
                comp = 0
                if len(data) >= COMPRESS_MIN_BYTES:
                    data = _compress(data)
                    comp = COMPRESSION
                ls = len_l[bs:be]
                lo = min(ls)
                if not lo:  # a zero length is no length (Whoosh skips it)
                    lo = min((x for x in ls if x), default=0)
                hi = max(ls)
                info = dumps((be - bs, ids_l[be - 1], w_hi, comp, lo, hi), 2)
                size = len(info) + len(data)
                out.append(pack_int(-size if be == end else size))
                out.append(info)
                out.append(data)
                pos += 4 + size
                total_weight += sum(ws)
                if w_hi > max_weight:
                    max_weight = w_hi
                if lo and (not min_len or lo < min_len):
                    min_len = lo
                if hi > max_len:
                    max_len = hi
            infos.append(_TERMINFO.pack(0, total_weight, end - start, min_len, max_len, max_weight, ids_l[start],
                                        ids_l[end - 1]) + pack_long(term_start) + pack_int(pos - term_start))
        postfile.write(b"".join(out))
        tindex.add_sorted([prefix + key for key in keys], infos)
    fieldwriter.finish_field()


# The Positions value of a term seen once, by its position: most terms of a document are.
_ONE_POSITION: list[bytes] = []


def _one_position_values(fmt: formats.Positions, count: int) -> list[bytes]:
    """_ONE_POSITION, grown to hold fmt.encode([p]) for every position below count."""
    while len(_ONE_POSITION) < count:
        _ONE_POSITION.append(fmt.encode([len(_ONE_POSITION)]))
    return _ONE_POSITION


def _fast_postings(field, value) -> tuple[list[bytes], list[float], list | None, int] | None:
    """(terms, weights, frequencies or values, length) of a Vietnamese text field, or None for Whoosh's path.

    The same postings Whoosh's Frequency/Positions formats make from our tokenizer, without a Token
    per word; other formats and analyzers go through field.index().
    """
    analyzer = field.analyzer
    fmt = field.format
    if not isinstance(analyzer, VietnameseTokenizer) or not isinstance(value, str) or fmt.field_boost != 1.0:
        return None
    if type(fmt) is formats.Frequency:
        counts: Counter[str] = analyzer.term_counts(value)
        freqs = list(counts.values())
        return list(map(str.encode, counts)), freqs, freqs, sum(freqs)
    if type(fmt) is formats.Positions:
        positions = analyzer.term_positions(value)
        freqs = list(map(len, positions.values()))
        length = sum(freqs)
        one = _one_position_values(fmt, length)  # positions count from 0: each is below the field's length
        encode = fmt.encode
        values = [one[p[0]] if len(p) == 1 else encode(p) for p in positions.values()]
        return list(map(str.encode, positions)), freqs, values, length
    return None


class FastSegmentWriter(SegmentWriter):
    """SegmentWriter with columnar postings; past limitmb of them it sorts them into runs on disk."""

    def __init__(self, ix, limitmb: int = 128, **kwargs):
        kwargs["compound"] = False  # see WRITER_OPTIONS in indexer.build
        super().__init__(ix, limitmb=limitmb, **kwargs)
        for name, field in self.schema.items():
            if field.vector or field.separate_spelling():
                raise NotImplementedError(f"{name}: term vectors and spelling words need Whoosh's own writer")
        self.pool = ColumnPool(self.schema, self._tempstorage.folder, limitmb * 1024 * 1024)
        _TermsWriter.adopt(self.fieldwriter._tindex)

    def add_document(self, **fields) -> None:
        """Add one document: stored values, columns and lengths as Whoosh does; postings by columns."""
        self._check_state()
        perdocwriter = self.perdocwriter
        schema = self.schema
        docnum = self.docnum
        pool = self.pool
        docboost = self._doc_boost(fields)
        fieldnames = sorted(name for name in fields if not name.startswith("_"))
        self._check_fields(schema, fieldnames)

        perdocwriter.start_doc(docnum)
        try:
            for fieldname in fieldnames:
                value = fields.get(fieldname)
                if value is None:
                    continue
                field = schema[fieldname]
                length = 0
                if field.indexed:
                    fieldboost = self._field_boost(fields, fieldname, docboost)
                    fast = _fast_postings(field, value) if fieldboost == 1.0 else None
                    if fast is not None:
                        terms, weights, extra, freq_total = fast
                        pool.add_document_field(fieldname, docnum, terms, weights, extra)
                        if field.scorable:
                            length = freq_total
                    else:
                        length = self._index_generic(fieldname, field, value, fieldboost, docnum)
                customval = fields.get(f"_stored_{fieldname}", value)
                perdocwriter.add_field(fieldname, field, customval if field.stored else None, length)
                column = field.column_type
                if column and customval is not None:
                    perdocwriter.add_column_value(fieldname, column, field.to_column_value(customval))
        except Exception:
            perdocwriter.cancel_doc()
            raise
        perdocwriter.finish_doc()
        self._added = True
        self.docnum += 1
        if pool.bytes > pool.limit_bytes:
            pool.save()

    def _index_generic(self, fieldname: str, field, value, fieldboost: float, docnum: int) -> int:
        """Postings of a field through Whoosh's field.index(); returns the field length."""
        terms, weights, extra = [], [], []
        kind = _value_kind(field.format)
        length = 0
        for tbytes, freq, weight, vbytes in field.index(value):
            terms.append(tbytes)
            weights.append(weight * fieldboost)
            if kind == "freq":
                extra.append(unpack_uint(vbytes)[0])
            elif kind == "list":
                extra.append(vbytes)
            if field.scorable:
                length += freq
        self.pool.add_document_field(fieldname, docnum, terms, weights, extra)
        return length

    def _flush_segment(self) -> None:
        """Write the buffered postings into the segment (lengths are read back like Whoosh does)."""
        self.perdocwriter.close()
        pdr = self.per_document_reader() if self.codec.length_stats else None
        try:
            self.pool.write_segment(self.fieldwriter, pdr)
            self.fieldwriter.close()
        finally:
            if pdr:
                pdr.close()


class WriterProcessDied(RuntimeError):
    """A writer process ended before the documents it was given were written."""

    def __init__(self, message: str, exitcode: int | None):
        super().__init__(message)
        self.exitcode = exitcode


class FastSubWriter(multiproc.SubWriterTask):
    """A writer process of FastMpWriter: it writes one segment of the documents it is given."""

    def run(self) -> None:
        """Write the batches the parent queues, then report the segment written."""
        ix = self.storage.open_index(self.indexname)
        writer = self.writer = FastSegmentWriter(ix, _lk=False, **self.kwargs)
        while self.running:
            jobinfo = self.jobqueue.get()
            if jobinfo is None:
                break
            self._process_file(*jobinfo)
        if not self.running:
            writer.cancel()
            return
        if writer._added:
            segment = writer._finalize_segment()
        else:
            writer._close_segment()
            segment = None
        self.resultqueue.put((None, writer.pool.fieldnames, segment), timeout=5)


class FastMpWriter(multiproc.MpWriter):
    """Whoosh's multiprocessing writer whose processes write a segment each with FastSegmentWriter."""

    task_class = FastSubWriter

    def __init__(self, ix, procs: int, batchsize: int = 64, limitmb: int = 128, **kwargs):
        kwargs["compound"] = False
        super().__init__(ix, procs=procs, batchsize=batchsize, multisegment=True, limitmb=limitmb, **kwargs)

    def _new_task(self):
        """Start one writer process."""
        task = self.task_class(self.storage, self.indexname, self.jobqueue, self.resultqueue, self.subargs, True)
        self.tasks.append(task)
        task.start()
        return task

    def cancel(self) -> None:
        """Stop the processes (one waiting for a job that will not come would keep this one from exiting)."""
        for task in self.tasks:
            if task.is_alive():
                task.terminate()
            task.join()
        multiproc.SegmentWriter.cancel(self)

    def process_died(self, task) -> None:
        """Called when a writer process has ended while documents were still being handed out: raise."""
        raise WriterProcessDied(f"a writer process ended with exit code {task.exitcode}", task.exitcode)

    def _put(self, job) -> None:
        """Queue a job for the processes, or call process_died() once one has ended (its jobs would pile up
        and the build wait for ever: Whoosh's MpWriter blocks on a full queue)."""
        while True:
            try:
                self.jobqueue.put(job, timeout=1)
                return
            except queue.Full:
                for task in self.tasks:
                    if not task.is_alive():
                        self.process_died(task)

    def _enqueue(self) -> None:
        """Hand the buffered documents to the processes through a temporary file, as MpWriter does."""
        filename = f"{random_name()}.doclist"
        with self.temp_storage().create_file(filename).raw_file() as f:
            for item in self.docbuffer:
                pickle.dump(item, f, 2)
        if len(self.tasks) < self.procs:
            self._new_task()
        self._put((filename, len(self.docbuffer)))
        self.docbuffer = []

    def _commit(self, mergetype, optimize, merge) -> None:
        """Wait for the processes and commit all their segments together."""
        if self.docbuffer:
            self._enqueue()
        for _task in self.tasks:
            self._put(None)
        finalsegments = self._merge_segments(mergetype, optimize, merge)
        results = []
        # Read before joining (a process exits once its answer has left the queue); a process that died sends
        # nothing, and the build then finds documents missing.
        while len(results) < len(self.tasks):
            try:
                results.append(self.resultqueue.get(timeout=1))
            except queue.Empty:
                if not any(task.is_alive() for task in self.tasks):
                    with contextlib.suppress(queue.Empty):
                        while len(results) < len(self.tasks):
                            results.append(self.resultqueue.get(timeout=1))
                    break
        for task in self.tasks:
            task.join()
        finalsegments.extend(segment for _runname, _fieldnames, segment in results if segment is not None)
        if self._added:
            finalsegments.append(self._finalize_segment())
        else:
            self._close_segment()
        self._commit_toc(finalsegments)
        self._finish()
