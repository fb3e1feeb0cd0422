"""A Whoosh segment writer that pays per document and per term, not per posting.

Whoosh's SegmentWriter turns every posting (about 1,000 per news article) into a tuple, sorts
them all, spills them to disk with pickle and merges them back, then adds them one at a time to
a block writer that asks the per-document reader for the field length of each. Here the
postings of a document go into per-field columns (arrays of term numbers, document numbers and
weights, and the posting values), one NumPy sort per field groups them by term, and each block is
encoded whole. The files are Whoosh's own (W3 codec): readers, updates, deletions and merges are
unchanged, and tests/test_fastwriter.py checks that both writers store the same postings.

When the columns pass the memory budget the writer closes the segment and starts another, so a
large build writes a few segments per process instead of sorting everything through temporary
files.
"""

from __future__ import annotations

import contextlib
import queue
import zlib
from array import array
from collections import Counter
from itertools import repeat
from pickle import dumps

import numpy as np
from whoosh import formats, multiproc
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3TermInfo, _lenfield
from whoosh.system import pack_int, pack_long, pack_ushort, unpack_uint
from whoosh.writing import SegmentWriter

from indexer.analysis import VietnameseTokenizer

HEADER = b"W3Bl"  # whoosh3.WHOOSH3_HEADER_MAGIC: starts every posting list in the postings file
BLOCK = 128  # postings per block, as W3Codec writes them
COMPRESSION = 3  # zlib level of W3Codec
# Blocks whose pickle is shorter than this are stored as they are: compressing a few dozen bytes saves next
# to nothing, and most terms have one or two postings per segment (readers check each block's flag).
COMPRESS_MIN_BYTES = 64
# zlib.compress() sets up a 32 KB window and 128 KB of hash tables for every block (50-80 us, more than the
# rest of the block's encoding); a 4 KB window holds a whole block and starts ten times faster. zlib.decompress
# reads any window size, so the blocks are still plain W3 blocks.
_ZLIB_WINDOW_BITS = 12
_ZLIB_MEM_LEVEL = 4


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


class _FieldColumns:
    """The buffered postings of one field, in the order they were added (document order)."""

    __slots__ = ("kind", "fixed_size", "terms", "tids", "docs", "weights", "extra")

    def __init__(self, fmt: formats.Format):
        self.kind = _value_kind(fmt)
        self.fixed_size = fmt.fixed_value_size()
        self.terms: dict[bytes, int] = {}  # term -> term number, in order of first sight
        self.tids = array("I")
        self.docs = array("I")
        self.weights = array("f")
        # freq: frequencies; list: the posting values (bytes); none: nothing
        self.extra: array | list | None = array("I") if self.kind == "freq" else [] if self.kind == "list" else None


class ColumnPool:
    """Postings of one segment, columnar per field; Whoosh's PostingPool interface where it is used."""

    def __init__(self, schema):
        self.schema = schema
        self.fields: dict[str, _FieldColumns] = {}
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
        cols.tids.extend([ids.setdefault(t, len(ids)) for t in terms])
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

    def iter_postings(self):
        """Whoosh's interface for reading the pool back; this pool is written by write_segment instead."""
        raise NotImplementedError("ColumnPool is written with write_segment()")

    def save(self) -> None:
        """Nothing to spill: the writer starts a new segment instead."""

    def cleanup(self) -> None:
        """Drop the buffered postings."""
        self.fields.clear()
        self.bytes = 0

    def write_segment(self, fieldwriter, lengths) -> None:
        """Write every field's postings into a segment's terms and postings files, then drop them."""
        for fieldname in sorted(self.fields):
            cols = self.fields.pop(fieldname)
            if cols.terms:
                _write_field(fieldwriter, fieldname, self.schema[fieldname], cols, _length_bytes(lengths, fieldname))
        self.bytes = 0


def _length_bytes(lengths, fieldname: str) -> np.ndarray | None:
    """The length byte of fieldname for every document of the segment (None when it keeps no lengths)."""
    if lengths is None:
        return None
    col = lengths._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    if col is None:
        return None
    return np.fromiter(iter(col), dtype=np.uint8, count=lengths.doc_count_all())


def _write_field(fieldwriter, fieldname: str, fieldobj, cols: _FieldColumns, lengths: np.ndarray | None) -> None:
    """Write one field's posting lists, term by term in byte order, as W3FieldWriter would."""
    fieldwriter.start_field(fieldname, fieldobj)
    prefix = pack_ushort(fieldwriter._fieldid)
    postfile = fieldwriter._postfile
    tindex = fieldwriter._tindex

    keys = list(cols.terms)  # by term number
    del cols.terms
    order = sorted(range(len(keys)), key=keys.__getitem__)
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys))
    by_term = rank[np.frombuffer(cols.tids, dtype=np.uint32)]
    del cols.tids, rank
    # Stable: within a term the postings stay in document order.
    perm = np.argsort(by_term, kind="stable")
    bounds = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(np.bincount(by_term, minlength=len(keys)), out=bounds[1:])
    del by_term
    docs = np.frombuffer(cols.docs, dtype=np.uint32)[perm]
    weights = np.frombuffer(cols.weights, dtype=np.float32)[perm]
    del cols.docs, cols.weights
    if cols.kind == "freq":
        extra = np.frombuffer(cols.extra, dtype=np.uint32)[perm].astype(">u4")  # Frequency values: big-endian uint
    elif cols.kind == "list":
        extra = np.array(cols.extra, dtype=object)[perm]
    else:
        extra = None
    cols.extra = None
    del perm
    lens = lengths[docs] if lengths is not None else np.zeros(len(docs), dtype=np.uint8)
    # Delta-encoded ids, as W3 blocks hold them (each block's first id is absolute, set per block below).
    deltas = np.empty(len(docs), dtype=np.int64)
    if len(docs):
        deltas[0] = docs[0]
        np.subtract(docs[1:], docs[:-1], out=deltas[1:], dtype=np.int64)

    kind, fixed_size = cols.kind, cols.fixed_size
    pos = postfile.tell()
    term = 0
    nterms = len(keys)
    while term < nterms:
        # A chunk of whole terms holding about _CHUNK_POSTINGS postings.
        p0 = int(bounds[term])
        last = int(np.searchsorted(bounds, p0 + _CHUNK_POSTINGS, side="right")) - 1
        last = min(max(last, term + 1), nterms)
        p1 = int(bounds[last])
        ids_l = docs[p0:p1].tolist()
        d_l = deltas[p0:p1].tolist()
        w_l = weights[p0:p1].tolist()
        len_l = lens[p0:p1].tolist()
        if kind == "freq":
            v_bytes = extra[p0:p1].tobytes()
        elif kind == "list":
            v_l = extra[p0:p1].tolist()
        b_l = bounds[term:last + 1].tolist()
        out: list[bytes] = []
        for t in range(term, last):
            start, end = b_l[t - term] - p0, b_l[t - term + 1] - p0
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
                    values = v_bytes[4 * bs:4 * be]
                elif kind == "list":
                    values = v_l[bs:be]
                    values = tuple(values) if fixed_size is None else b"".join(values)
                else:
                    values = None
                data = dumps((tuple(block_ids), mini_weights, values), 2)
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
            tindex.add(prefix + keys[order[t]],
                       _TERMINFO.pack(0, total_weight, end - start, min_len, max_len, max_weight, ids_l[start],
                                      ids_l[end - 1]) + pack_long(term_start) + pack_int(pos - term_start))
        postfile.write(b"".join(out))
        term = last
    fieldwriter.finish_field()


_ONE_POSITION: dict[int, bytes] = {}  # Positions value of a term seen once, by position (most terms are)


def _positions_value(fmt: formats.Positions, positions: list[int]) -> bytes:
    """fmt.encode(positions), remembered for the common single position."""
    if len(positions) == 1:
        value = _ONE_POSITION.get(positions[0])
        if value is None:
            value = _ONE_POSITION[positions[0]] = fmt.encode(positions)
        return value
    return fmt.encode(positions)


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
        return [t.encode("utf-8") for t in counts], freqs, freqs, sum(freqs)
    if type(fmt) is formats.Positions:
        positions = analyzer.term_positions(value)
        freqs = [len(p) for p in positions.values()]
        values = [_positions_value(fmt, p) for p in positions.values()]
        return [t.encode("utf-8") for t in positions], freqs, values, sum(freqs)
    return None


class FastSegmentWriter(SegmentWriter):
    """SegmentWriter with columnar postings; starts a new segment when the columns reach limitmb."""

    def __init__(self, ix, limitmb: int = 128, **kwargs):
        kwargs["compound"] = False  # see WRITER_OPTIONS in indexer.build
        super().__init__(ix, limitmb=limitmb, **kwargs)
        self.limit_bytes = limitmb * 1024 * 1024
        for name, field in self.schema.items():
            if field.vector or field.separate_spelling():
                raise NotImplementedError(f"{name}: term vectors and spelling words need Whoosh's own writer")
        self.pool = ColumnPool(self.schema)
        self.written: list = []  # segments finished because the columns were full

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
        if pool.bytes > self.limit_bytes:
            self._next_segment()

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

    def _next_segment(self) -> None:
        """Finish the segment being written and start an empty one in the same writer."""
        self.written.append(self._finalize_segment())
        self.newsegment = self.codec.new_segment(self.storage, self.indexname)
        self.perdocwriter = self.codec.per_document_writer(self.storage, self.newsegment)
        self.fieldwriter = self.codec.field_writer(self.storage, self.newsegment)
        self.pool = ColumnPool(self.schema)
        self.docnum = self.docbase
        self._added = False

    def finish_segments(self) -> list:
        """Finish writing and return every segment this writer wrote (without committing them)."""
        self._check_state()
        if self._added:
            self.written.append(self._finalize_segment())
        else:
            self._close_segment()
        return self.written

    def commit(self, mergetype=None, optimize=None, merge=None) -> None:
        """Commit the segments written so far and the current one, after Whoosh's merge policy."""
        self._check_state()
        finalsegments = self._merge_segments(mergetype, optimize, merge)
        finalsegments.extend(self.finish_segments())
        self._commit_toc(finalsegments)
        self._finish()


class FastSubWriter(multiproc.SubWriterTask):
    """A writer process of FastMpWriter: it answers with the list of segments it wrote."""

    def run(self) -> None:
        """Write the batches the parent queues, then report every segment written."""
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
        fieldnames = set(writer.schema.names())
        self.resultqueue.put((None, fieldnames, writer.finish_segments()), timeout=5)


class FastMpWriter(multiproc.MpWriter):
    """Whoosh's multiprocessing writer whose processes write segments with FastSegmentWriter."""

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

    def _commit(self, mergetype, optimize, merge) -> None:
        """Wait for the processes and commit all their segments together."""
        if self.docbuffer:
            self._enqueue()
        for _task in self.tasks:
            self.jobqueue.put(None)
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
        for _runname, _fieldnames, segments in results:
            finalsegments.extend(segments)
        if self._added:
            finalsegments.append(self._finalize_segment())
        else:
            self._close_segment()
        self._commit_toc(finalsegments)
        self._finish()
