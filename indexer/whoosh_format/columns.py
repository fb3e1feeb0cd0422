"""The postings of a segment being written, held as columns per field, and spilled to sorted runs on disk.

ColumnPool takes the postings of a document as per-field columns (arrays of term numbers, document
numbers and weights, and the posting values); one NumPy sort per field groups them by term
(_MemoryRun). Past the memory budget each field's columns are sorted into a run in a temporary file
(_FileRun). The segment is written at the end from all runs, merged term by term a chunk at a time,
and each chunk encoded by blocks.encode_posting_lists into the postings and terms files.
"""

from __future__ import annotations

import contextlib
import heapq
import os
from array import array
from collections.abc import Iterator
from itertools import repeat

import numpy as np
from whoosh import columns, formats
from whoosh.codec.base import PerDocumentReader
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3FieldWriter, _lenfield
from whoosh.fields import FieldType, Schema
from whoosh.system import pack_ushort, unpack_uint
from whoosh.util import random_name

from indexer.whoosh_format.blocks import encode_posting_lists, value_kind
from indexer.whoosh_format.flat_postings import FlatWriter
from indexer.whoosh_format.terms import TermsWriter

# Postings of a field turned into Python lists at a time when a segment is written (bounds the memory).
_CHUNK_POSTINGS = 1 << 18
# Estimated bytes of one buffered posting: term number, document number, weight, and the value.
_POSTING_BYTES = {"none": 12, "freq": 16, "list": 24}
_TERM_BYTES = 120  # a term's dictionary entry and its bytes


class _FieldColumns:
    """The buffered postings of one field, in the order they were added (document order)."""

    __slots__ = ("kind", "fixed_size", "terms", "next_tid", "tids", "docs", "weights", "extra")

    def __init__(self, fmt: formats.Format):
        """Empty columns for postings of format fmt."""
        self.kind = value_kind(fmt)
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
        """Sort the postings of cols by term, taking them over (cols is left empty)."""
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
        """Write run to a new file at path."""
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

    def _read(self, name: str, start: int, stop: int) -> bytes | np.ndarray:
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


_Run = _MemoryRun | _FileRun  # a field's postings sorted by term, in memory or in a file


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

    def __init__(self, schema: Schema, tempdir: str | None = None, limit_bytes: int = 128 * 2**20):
        """An empty pool for the fields of schema, spilling runs into tempdir (never if None) past limit_bytes."""
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

    def iter_postings(self) -> Iterator[tuple]:
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

    def write_segment(self, fieldwriter: W3FieldWriter, lengths: PerDocumentReader | None) -> None:
        """Write every field's postings into a segment's terms and postings files, and their flat copy (see
        flat_postings), then drop them."""
        flat = FlatWriter(fieldwriter._storage, fieldwriter._segment)
        try:
            for fieldname in sorted(set(self.fields) | set(self.runs)):
                runs: list = self.runs.pop(fieldname, [])
                cols = self.fields.pop(fieldname, None)
                if cols is not None and cols.terms:
                    runs.append(_MemoryRun(cols))
                fieldobj = self.schema[fieldname]
                try:
                    if runs:
                        _write_field(fieldwriter, fieldname, fieldobj, runs, _length_bytes(lengths, fieldname), flat)
                finally:
                    for run in runs:
                        run.remove()
            flat.close()
        except BaseException:
            flat.cancel()
            raise
        self.bytes = 0


def _length_bytes(lengths: PerDocumentReader | None, fieldname: str) -> np.ndarray | None:
    """The length byte of fieldname for every document of the segment (None when it keeps no lengths)."""
    if lengths is None:
        return None
    col = lengths._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    if col is None:
        return None
    return length_bytes(col, lengths.doc_count_all())


def length_bytes(col: columns.ColumnReader, doccount: int) -> np.ndarray:
    """The length byte of every document from a segment's lengths column: one read of the column's bytes
    (Whoosh's reader seeks and reads once per document: 3.6 s for the nine fields of 150,000 articles)."""
    if isinstance(col, columns.NumericColumn.Reader) and col._typecode == "B":
        out = np.zeros(doccount, dtype=np.uint8)  # documents past the column's end have the default, 0
        count = min(col._count, doccount)
        if count:
            out[:count] = np.frombuffer(col._dbfile.get(col._basepos, count), dtype=np.uint8)
        return out
    return np.fromiter(iter(col), dtype=np.uint8, count=doccount)


def _chunks_of_one(run: _Run) -> Iterator[tuple]:
    """(terms, bounds, docs, weights, freqs, values) of whole terms, about _CHUNK_POSTINGS postings at a time."""
    term = 0
    while term < run.nkeys:
        p0 = int(run.bounds[term])
        last = int(np.searchsorted(run.bounds, p0 + _CHUNK_POSTINGS, side="right")) - 1
        last = min(max(last, term + 1), run.nkeys)
        p1 = int(run.bounds[last])
        yield (run.keys(term, last), run.bounds[term:last + 1] - p0, *run.slice(p0, p1))
        term = last


def _run_keys(run: _Run, r: int, batch: int = 1 << 16) -> Iterator[tuple[bytes, int]]:
    """(term, r) for every term of a run, in byte order."""
    for a in range(0, run.nkeys, batch):
        for key in run.keys(a, min(a + batch, run.nkeys)):
            yield key, r


def _merged_chunks(runs: list[_Run]) -> Iterator[tuple]:
    """Like _chunks_of_one over the union of several runs' terms; a term's postings come run after run."""
    start = [0] * len(runs)  # next term of each run not yet in a chunk
    members: list[list[int]] = [[] for _ in runs]  # per run: the chunk's term number of each term it has
    keys: list[bytes] = []

    def chunk() -> tuple:
        """The postings of the terms in keys, gathered from every run, grouped by term."""
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


def _write_field(fieldwriter: W3FieldWriter, fieldname: str, fieldobj: FieldType, runs: list[_Run],
                 lengths: np.ndarray | None, flat: FlatWriter) -> None:
    """Write one field's posting lists from its sorted runs, term by term in byte order, as W3FieldWriter would,
    and give a scored field's to flat as well."""
    fieldwriter.start_field(fieldname, fieldobj)
    fmt = fieldobj.format
    kind, fixed_size = value_kind(fmt), fmt.fixed_value_size()
    positions = type(fmt) is formats.Positions  # values of variable size, kept as "list": copied to flat too
    if fieldobj.scorable:  # the fields scored from postings: ids and tags are looked up otherwise
        flat.start_field(fieldname, positions=positions)
    else:
        flat.skip_field(fieldname)
    chunks = _chunks_of_one(runs[0]) if len(runs) == 1 else _merged_chunks(runs)
    prefix = pack_ushort(fieldwriter._fieldid)
    postfile = fieldwriter._postfile
    tindex: TermsWriter = fieldwriter._tindex
    pos = postfile.tell()
    for keys, bounds, docs, weights, freqs, values in chunks:
        out, infos, pos = encode_posting_lists(bounds, docs, weights, freqs, values, lengths, kind, fixed_size, pos)
        postfile.write(b"".join(out))
        tindex.add_sorted([prefix + key for key in keys], infos)
        flat.add_chunk(keys, bounds, docs, weights, values if positions else None)
    flat.end_field()
    fieldwriter.finish_field()
