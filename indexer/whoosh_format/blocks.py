"""Posting lists in W3 blocks: how our writer encodes them and how our reader decodes them.

A posting list in the postings file is HEADER, then per block of up to BLOCK postings: its byte length
(negative for the last block), a pickled (count, last id, max weight, compression, min length, max length)
and the pickled, perhaps zlib-compressed (ids, weights, values). Ids are gaps from the previous id (the
first absolute); weights are None (all 1), one float (all equal) or one each. A term's entry in the terms
file is TERMINFO followed by where its list is (EXTENT). encode_posting_lists() writes chunks of lists;
list_arrays() and block_arrays() read them back as NumPy arrays, as W3LeafMatcher reads them in Python.
"""

from __future__ import annotations

import io
import os
import pickle
import zlib
from itertools import chain
from pickle import dumps

import numpy as np
from whoosh import formats
from whoosh.codec.whoosh3 import W3LeafMatcher
from whoosh.filedb.structfile import BufferFile
from whoosh.reading import SegmentReader
from whoosh.system import pack_int, pack_long

from indexer.backend import check_deadline
from indexer.whoosh_format.constants import BLOCK, BLOCK_SIZE, HEADER, TERMINFO

# --- writing -----------------------------------------------------------------------------------

# zlib level of the blocks that are compressed (W3Codec uses 3): on the blocks of 1,000 news articles level 1
# takes a third less time (47 -> 31 us a block) for 3 % more bytes.
COMPRESSION = 1
# Blocks whose pickle is shorter than this are stored as they are: they save few bytes, and most terms have one
# or two postings per segment (readers check each block's flag). 2,000 articles: 512 instead of 0 saves 20 % of
# the time writing the segment for 6 % more bytes.
COMPRESS_MIN_BYTES = 512
# zlib.compress() sets up a 32 KB window and 256 KB of tables, more than malloc keeps at hand: a block-sized
# 4 KB window starts faster. zlib.decompress reads any window size, so these are still plain W3 blocks.
ZLIB_WINDOW_BITS = 12
# Pickle protocol of a block's (ids, weights, values). W3FieldWriter uses 2, where every bytes value (the
# positions of a syllable field, one per posting) is pickled as a call to _codecs.encode; from 3 on a value is
# plain BINBYTES: a block of 128 positions values loads 10x faster (44 -> 4 us) and takes half the bytes.
# Whoosh's reader unpickles whatever protocol it finds, so these are still W3 blocks it reads.
DATA_PROTOCOL = 3
ZLIB_MEM_LEVEL = 8


def compress(data: bytes) -> bytes:
    """zlib-compress one block with a window sized for blocks."""
    c = zlib.compressobj(COMPRESSION, zlib.DEFLATED, ZLIB_WINDOW_BITS, ZLIB_MEM_LEVEL)
    return c.compress(data) + c.flush()


def value_kind(fmt: formats.Format) -> str:
    """How a format's posting values are kept: none, a frequency (rebuilt on writing), or as bytes."""
    if fmt.fixed_value_size() == 0:
        return "none"
    if type(fmt) is formats.Frequency:
        return "freq"
    return "list"


def encode_posting_lists(bounds: np.ndarray, docs: np.ndarray, weights: np.ndarray, freqs: np.ndarray | None,
                         values: list | None, lengths: np.ndarray | None, kind: str, fixed_size: int | None,
                         pos: int) -> tuple[list[bytes], list[bytes], int]:
    """(bytes to append to the postings file, each term's TermInfo entry, position after them) of a chunk.

    The postings of term t are docs/weights/freqs/values[bounds[t]:bounds[t + 1]], in document order; pos
    is where the chunk starts in the postings file; lengths holds each document's length byte (or None).
    The blocks and entries are what W3FieldWriter writes for the same postings.
    """
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
    for t in range(len(b_l) - 1):
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
            data = dumps(((doc,), None if w == 1.0 else w, block_values), DATA_PROTOCOL)
            comp = 0
            if len(data) >= COMPRESS_MIN_BYTES:
                data = compress(data)
                comp = COMPRESSION
            info = dumps((1, doc, w, comp, lb, lb), 2)
            size = len(info) + len(data)
            out += (HEADER, pack_int(-size), info, data)
            infos.append(TERMINFO.pack(0, w, 1, lb, lb, w, doc, doc) + pack_long(pos) + pack_int(8 + size))
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
            data = dumps((tuple(block_ids), mini_weights, block_values), DATA_PROTOCOL)
            comp = 0
            if len(data) >= COMPRESS_MIN_BYTES:
                data = compress(data)
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
        infos.append(TERMINFO.pack(0, total_weight, end - start, min_len, max_len, max_weight, ids_l[start],
                                   ids_l[end - 1]) + pack_long(term_start) + pack_int(pos - term_start))
    return out, infos, pos


# --- reading -----------------------------------------------------------------------------------

# A posting list up to this size is fetched with one read and decoded in memory: most are a few hundred
# bytes, and Whoosh's matcher made six seeks and reads for its header and first block alone.
POSTINGS_READ_AT_ONCE = 1024 * 1024


def block_arrays(data: tuple, count: int, byteids: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(docnums, weights) of a block's unpickled (ids, weights, values), decoded with NumPy as Whoosh's
    _read_ids and _read_weights decode them in Python loops (ids are stored as gaps; weights as None = all
    1, one float for all, or one each)."""
    ids, weights = data[0], data[1]
    ids = np.asarray(ids, dtype=np.int64)
    if not byteids:
        ids = np.cumsum(ids)
    if weights is None:
        tfs = np.ones(count, dtype=np.float32)
    elif isinstance(weights, float):
        tfs = np.full(count, weights, dtype=np.float32)
    else:
        tfs = np.asarray(weights, dtype=np.float32)
    return ids, tfs


def read_postings(reader: SegmentReader, start: int, length: int) -> bytes:
    """The bytes of a posting list (call with the reader's lock: a file without a descriptor is seeked)."""
    postfile = reader._terms._postfile
    if getattr(postfile, "is_real", False):
        return os.pread(postfile.fileno(), length, start)
    return postfile.get(start, length)


def list_arrays(buf: bytes, deadline: float | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(docnums, weights) of each block of a whole posting list in memory, read as W3LeafMatcher reads it.

    Per block: its length (negative for the last), a pickled (count, max id, max weight, compression,
    min length, max length), then the (compressed) pickled (ids, weights, values).
    """
    if buf[:4] != HEADER:
        raise ValueError(f"posting list header {buf[:4]!r}")
    stream = io.BytesIO(buf)  # shares buf: pickle.load reads the block header and says where it ended
    out, pos = [], 4
    while True:
        # Between blocks: a term in most of a large index has thousands of them.
        check_deadline(deadline)
        (size,) = BLOCK_SIZE.unpack_from(buf, pos)
        stream.seek(pos + BLOCK_SIZE.size)
        count, _, _, compression, _, _ = pickle.load(stream)
        end = pos + BLOCK_SIZE.size + abs(size)
        data = buf[stream.tell():end]
        out.append(block_arrays(pickle.loads(zlib.decompress(data) if compression else data), count))
        if size < 0:
            return out
        pos = end


def leaf_matcher(reader: SegmentReader, fieldname: str, term: str | bytes, start: int, length: int) -> W3LeafMatcher:
    """The matcher Whoosh's postings() builds, from the term entry already read (call with the reader's lock).

    A list up to POSTINGS_READ_AT_ONCE is read with one call and decoded from memory. Deletions are left in:
    callers mask them with their live-document array instead of Whoosh's filtering wrapper.
    """
    source = reader._terms._postfile
    if length <= POSTINGS_READ_AT_ONCE:
        source, start = BufferFile(source.get(start, length)), 0
    return W3LeafMatcher(source, start, length, reader.schema[fieldname].format, term=(fieldname, term))


# A Positions value is a big-endian u32 count, then the pickle (protocol 2) of the position gaps as a list:
# PROTO 2, EMPTY_LIST, BINPUT 0, the items (one APPEND, or MARK ... APPENDS), STOP.
_POSITIONS_HEAD = b"\x80\x02"
_POSITIONS_COUNT = np.dtype(">u4")


def position_arrays(values: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(count, positions) of many Positions-format values: count[i] positions of value i, one after the other.

    The values' pickles, without their PROTO and STOP, are one pickle of a list of lists once put inside
    `PROTO EMPTY_LIST MARK ... APPENDS STOP`: one pickle.loads for all of them instead of one per value
    (Positions.decode_positions), which is most of a phrase's time on common syllables.
    """
    counts = np.frombuffer(b"".join([v[:4] for v in values]), dtype=_POSITIONS_COUNT).astype(np.int64)
    if len(counts) != len(values):
        raise ValueError("a Positions value shorter than its count")
    if not all(v[4:6] == _POSITIONS_HEAD and v[-1:] == b"." for v in values):
        # Not the layout this writer and Whoosh's give: Whoosh's own decoder, one value at a time.
        lists = [formats.Positions().decode_positions(bytes(v)) for v in values]
        _check_counts(lists, counts)
        return counts, np.fromiter(chain.from_iterable(lists), dtype=np.int64, count=int(counts.sum()))
    lists = pickle.loads(b"\x80\x02](" + b"".join([v[6:-1] for v in values]) + b"e.")
    lengths = _check_counts(lists, counts)
    gaps = np.fromiter(chain.from_iterable(lists), dtype=np.int64, count=int(lengths.sum()))
    running = np.cumsum(gaps)
    # Gaps restart at each value: subtract the running total reached before the value's first gap.
    starts = np.cumsum(lengths) - lengths
    before = np.zeros(len(values), dtype=np.int64)
    has = lengths > 0
    before[has] = running[starts[has]] - gaps[starts[has]]
    return counts, running - np.repeat(before, lengths)


def _check_counts(lists: list[list[int]], counts: np.ndarray) -> np.ndarray:
    """The lists' lengths, which must be the values' own counts (ValueError if not)."""
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    if not np.array_equal(lengths, counts):
        raise ValueError("Positions values whose counts and lists disagree")
    return lengths
