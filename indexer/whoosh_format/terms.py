"""A segment's terms file (Whoosh's OrderedHashWriter format): our chunked writer and our two-read lookup.

The file holds each term as (key length, value length, key, value) in key order, then 256 linear-probing
hash tables of (hash, position) slots keyed by the low 32 bits of the key's MD5, then the extras.
TermsWriter writes it a chunk of terms at a time; hash_get() finds one key in it with os.pread on a
PreadFile, the file object a reader's terms table is given in place of Whoosh's buffered one.
"""

from __future__ import annotations

import os
from array import array
from hashlib import md5

import numpy as np
from whoosh.filedb import filetables
from whoosh.filedb.filetables import _lengths as LENGTHS
from whoosh.filedb.filetables import _pointer as POINTER
from whoosh.filedb.structfile import StructFile

# Bytes read past a term's key in the same call: a W3TermInfo entry is 35 bytes unless its postings are inlined.
ENTRY_GUESS = 48


class TermsWriter(filetables.OrderedHashWriter):
    """Whoosh's terms file writer taking a chunk of terms per call, with its hash index kept in arrays.

    OrderedHashWriter writes every term with three writes and two tell() calls and remembers it as a
    tuple (about 120 bytes: 250 MB for the 2 million terms of a 75,000-article segment); here a chunk is
    one write and a term is 12 bytes until the hash tables are written. The file is the same format.
    """

    @classmethod
    def adopt(cls, writer: filetables.OrderedHashWriter) -> TermsWriter:
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
        pack_lengths = LENGTHS.pack
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


class PreadFile(StructFile):
    """The terms file of a segment, whose get() is one os.pread: a term lookup makes four small reads at
    scattered places, each a seek and a buffer refill through Python's buffered file otherwise.

    The file position is not used, so threads need no lock for it; everything else reads as before.
    """

    def __init__(self, original: StructFile):
        """Wrap the open file of original (same name, same close callback)."""
        super().__init__(original.file, name=original._name, onclose=original.onclose)
        self.fd = original.file.fileno()

    def get(self, position: int, length: int) -> bytes:
        """length bytes at position."""
        return os.pread(self.fd, length, position)


def use_pread(tindex: filetables.HashReader) -> None:
    """Give a segment's terms table a PreadFile, so hash_get() reads it in two calls (files on disk only)."""
    if getattr(tindex.dbfile, "is_real", False):
        tindex.dbfile = PreadFile(tindex.dbfile)


def hash_get(tindex: filetables.HashReader, key: bytes) -> bytes | None:
    """The value of key in a Whoosh hash file, or None: HashReader.get() in two reads instead of four or five.

    Same walk as HashReader.ranges_for_key (slot of the key's hash, linear probing, first equal key wins);
    the entry's lengths, key and (usually whole) value come in one read.
    """
    dbfile = tindex.dbfile
    if not isinstance(dbfile, PreadFile):
        return tindex.get(key)
    fd = dbfile.fd
    keyhash = tindex.hashfn(key)
    tablestart, numslots = tindex.tables[keyhash & 255]
    if not numslots:
        return None
    size, head = POINTER.size, LENGTHS.size
    tableend = tablestart + numslots * size
    slotpos = tablestart + ((keyhash >> 8) % numslots) * size
    for _ in range(numslots):
        slothash, itempos = POINTER.unpack(os.pread(fd, size, slotpos))
        if not itempos:
            return None
        if slothash == keyhash:
            entry = os.pread(fd, head + len(key) + ENTRY_GUESS, itempos)
            keylen, datalen = LENGTHS.unpack_from(entry)
            if keylen == len(key) and entry[head:head + keylen] == key:
                datapos = itempos + head + keylen
                data = entry[head + keylen:head + keylen + datalen]
                return data if len(data) == datalen else os.pread(fd, datalen, datapos)
        slotpos += size
        if slotpos == tableend:
            slotpos = tablestart
    return None
