"""The layout of Whoosh's W3 files (whoosh-reloaded 2.7.5) that both our writer and our reader rely on.

Posting lists: a magic header, then blocks of BLOCK postings, each led by its signed byte length (negative
for the last block). Term entries: W3TermInfo's fixed struct, then where the postings are (EXTENT) unless
they are inlined. Field lengths: one byte per document, decoded by LENGTH_TABLE.
"""

from __future__ import annotations

import struct

import numpy as np
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3TermInfo
from whoosh.util.numeric import byte_to_length

HEADER = b"W3Bl"  # starts every posting list in the postings file
if HEADER != WHOOSH3_HEADER_MAGIC:  # a Whoosh with another magic would write another format
    raise ImportError(f"Whoosh's W3 header is {WHOOSH3_HEADER_MAGIC!r}, this package knows {HEADER!r}")
BLOCK = 128  # postings per block, as W3Codec writes them

BLOCK_SIZE = struct.Struct("!i")  # a posting block's byte length, as StructFile.read_int reads it
TERMINFO = W3TermInfo._struct  # flags, weight, df, min/max length, max weight, min/max id of a term entry
TERMINFO_HEAD = struct.Struct("!BfI")  # flags, weight, document frequency: the start of TERMINFO
EXTENT = struct.Struct("!qi")  # postings offset and length, after TERMINFO when not inlined

# Field length of every length byte (Whoosh stores a length in one byte, exactly only up to a point).
LENGTH_TABLE = np.array([byte_to_length(i) for i in range(256)], dtype=np.float32)
# What Whoosh writes in a numeric column for a document without a value: the largest uint64.
NO_DATE = 2**64 - 1
