"""One story, many portals: near-duplicate articles grouped at index time with MinHash LSH (datasketch).

The same press release is reposted by provincial portals and outlets with small edits: a new title, a
line added, the dateline or the signature changed. Each article becomes the set of its word shingles
(runs of SHINGLE folded syllables from ``indexer.analysis``, so marks, tone placement, case and
typography do not matter), a MinHash of that set, and an entry in an LSH index. Two articles whose
estimated Jaccard similarity is at least the threshold are linked; a story is a connected group of
linked articles, named by its earliest member (the earliest ``published``, then the first added).

Updates and deletes keep the groups right: adding an id again replaces the article, and removing one
splits its group when it was the only link between two parts. A Deduper saves to one ``.npz`` file
(numpy arrays, no pickle) beside an index generation and loads from it.

The threshold was measured on Dân Trí 2020 and all of VietNews, 153,357 articles
(``bench/near_duplicates.py``; groups, judged pairs and costs in ``bench/results/near-duplicates-sample.md``).
At 0.5 no sampled pair was unrelated; below it unrelated pairs appear and daily series chain into large groups,
and above it lightly edited reposts (new title and dateline, a sentence dropped: 0.70) are lost without the
other links getting more precise, since what they are is follow-ups re-using an earlier body and templated
series, which text alone cannot tell from copies. Cost: about 1 ms per article given its folded syllables.
"""

from __future__ import annotations

import json
import os
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexer.analysis import clean_text, syllable_spans

if TYPE_CHECKING:
    from datasketch import LeanMinHash

FILE = "near_duplicates.npz"  # its name in an index generation folder
FORMAT = 2  # 2: shingles hashed with CRC-32 (zlib, in C) instead of datasketch's SHA-1 in Python
THRESHOLD = 0.5  # estimated Jaccard of 5-syllable shingles; see the module docstring for the measurement
SHINGLE = 5  # syllables per shingle: about three words, long enough that shared phrases are rare by chance
NUM_PERM = 128
SEED = 1
SCHEME = "affine32"  # datasketch >= 2.0; saved signatures name it, since other schemes do not compare
MIN_SHINGLES = 8  # fewer shingles than this (a caption, an empty body) is no evidence of sameness
# datasketch's default weights put the LSH's recall at the threshold itself near 50 %; weighing a missed
# pair 19 times a false candidate finds 93-98 % of the pairs at the threshold, and the estimate then
# decides, so extra candidates cost a comparison each, not a wrong link.
LSH_WEIGHTS = (0.05, 0.95)


def folded_syllables(text: str) -> list[str]:
    """The folded syllables of a text, as analyse(text).folded gives them, without pyvi's CRF (not needed)."""
    return [folded for folded, _, _, _ in syllable_spans(clean_text(text))]


def shingles(syllables: Sequence[str], size: int = SHINGLE) -> set[bytes]:
    """The set of runs of `size` consecutive syllables, UTF-8 encoded (one run if the text is shorter)."""
    if not syllables:
        return set()
    if len(syllables) <= size:
        return {" ".join(syllables).encode()}
    return {" ".join(syllables[i:i + size]).encode() for i in range(len(syllables) - size + 1)}


@dataclass(frozen=True, slots=True)
class _Params:
    threshold: float
    num_perm: int
    shingle: int
    seed: int


class Deduper:
    """Near-duplicate groups of articles, kept up to date as articles are added, replaced and removed."""

    def __init__(self, threshold: float = THRESHOLD, *, num_perm: int = NUM_PERM, shingle: int = SHINGLE,
                 seed: int = SEED) -> None:
        """An empty index; a pair is linked when its estimated Jaccard similarity is at least `threshold`."""
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.params = _Params(threshold, num_perm, shingle, seed)
        # Imported here: datasketch pulls in scipy (a third of a second), and the search side, which only
        # reads the saved groups, imports this module without ever grouping.
        from datasketch import MinHash, MinHashLSH

        self._template = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME)
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=LSH_WEIGHTS)
        self._sigs: dict[str, np.ndarray | None] = {}  # None: too short to compare
        self._rank: dict[str, tuple[int, str, int]] = {}  # (undated, published, sequence): earliest first
        self._links: dict[str, set[str]] = {}
        self._group: dict[str, int] = {}
        self._members: dict[int, set[str]] = {}
        self._next_group = 0
        self._seq = 0

    # --- signatures --------------------------------------------------------------------------

    def signature(self, text: str = "", *, syllables: Sequence[str] | None = None) -> np.ndarray | None:
        """The MinHash of a text (or of its folded syllables, if the caller has them); None if too short."""
        if syllables is None:
            syllables = folded_syllables(text)
        grams = shingles(syllables, self.params.shingle)
        if len(grams) < MIN_SHINGLES:
            return None
        m = type(self._template)(num_perm=self.params.num_perm, seed=self.params.seed, scheme=SCHEME,
                                 hashfunc=zlib.crc32, permutations=self._template.permutations)
        m.update_batch(grams)
        return m.hashvalues.copy()

    def _lean(self, sig: np.ndarray) -> LeanMinHash:
        """A MinHash for the LSH index from saved hash values."""
        from datasketch import LeanMinHash

        return LeanMinHash(seed=self.params.seed, hashvalues=sig, scheme=SCHEME)

    def similarity(self, a: str, b: str) -> float:
        """The estimated Jaccard similarity of two added articles (0 when either is too short)."""
        sa, sb = self._sigs[a], self._sigs[b]
        if sa is None or sb is None:
            return 0.0
        return float(np.count_nonzero(sa == sb)) / len(sa)

    # --- updates -----------------------------------------------------------------------------

    def add(self, doc_id: str, text: str = "", *, syllables: Sequence[str] | None = None,
            signature: np.ndarray | None = None, published: str = "") -> str:
        """Add or replace an article and return its story id; a signature may be computed elsewhere (workers)."""
        seq = self._rank[doc_id][2] if doc_id in self._rank else None
        if doc_id in self._sigs:
            self.remove(doc_id)
        if seq is None:
            seq, self._seq = self._seq, self._seq + 1
        sig = signature if signature is not None else self.signature(text, syllables=syllables)
        if sig is not None:
            sig = np.asarray(sig, dtype=np.uint32)
            if sig.shape != (self.params.num_perm,):
                raise ValueError(f"signature of {sig.shape} values, expected ({self.params.num_perm},)")
        self._sigs[doc_id] = sig
        self._rank[doc_id] = (0 if published else 1, published or "", seq)
        self._links[doc_id] = set()
        group = self._next_group
        self._next_group += 1
        self._group[doc_id] = group
        self._members[group] = {doc_id}
        if sig is None:
            return doc_id
        lean = self._lean(sig)
        for other in self._lsh.query(lean):
            # LSH finds candidates with a probability; the estimate decides.
            if self.similarity(doc_id, other) >= self.params.threshold:
                self._link(doc_id, other)
        self._lsh.insert(doc_id, lean, check_duplication=False)
        return self.story(doc_id)

    def _link(self, a: str, b: str) -> None:
        """Link two articles and merge their groups (the smaller into the larger)."""
        self._links[a].add(b)
        self._links[b].add(a)
        ga, gb = self._group[a], self._group[b]
        if ga == gb:
            return
        if len(self._members[ga]) < len(self._members[gb]):
            ga, gb = gb, ga
        for doc in self._members.pop(gb):
            self._group[doc] = ga
            self._members[ga].add(doc)

    def remove(self, doc_id: str) -> None:
        """Remove an article; its group splits if the article was the only link between its parts."""
        if doc_id not in self._sigs:
            return
        if self._sigs.pop(doc_id) is not None:
            self._lsh.remove(doc_id)
        del self._rank[doc_id]
        neighbours = self._links.pop(doc_id)
        for other in neighbours:
            self._links[other].discard(doc_id)
        group = self._group.pop(doc_id)
        rest = self._members.pop(group)
        rest.discard(doc_id)
        if rest:
            self._regroup(rest)

    def _regroup(self, docs: set[str]) -> None:
        """Split a set of articles, once one group, into the connected groups its links now make."""
        left = set(docs)
        while left:
            start = left.pop()
            part, stack = {start}, [start]
            while stack:
                for other in self._links[stack.pop()]:
                    if other not in part:
                        part.add(other)
                        stack.append(other)
            left -= part
            group = self._next_group
            self._next_group += 1
            self._members[group] = part
            for doc in part:
                self._group[doc] = group

    # --- reading -----------------------------------------------------------------------------

    def __len__(self) -> int:
        """The number of articles."""
        return len(self._sigs)

    def __contains__(self, doc_id: object) -> bool:
        """Whether an article of this id was added (and not removed)."""
        return doc_id in self._sigs

    def _earliest(self, docs: Iterable[str]) -> list[str]:
        """Articles earliest first: dated before undated, then by date, then in the order added."""
        return sorted(docs, key=self._rank.__getitem__)

    def story(self, doc_id: str) -> str | None:
        """The story id of an article: the id of its group's earliest member (None for an unknown id)."""
        if doc_id not in self._group:
            return None
        return min(self._members[self._group[doc_id]], key=self._rank.__getitem__)

    def similar(self, doc_id: str) -> list[str]:
        """The other articles of an article's story, earliest first."""
        if doc_id not in self._group:
            return []
        return self._earliest(self._members[self._group[doc_id]] - {doc_id})

    def groups(self, min_size: int = 2) -> dict[str, list[str]]:
        """Story id -> its articles, earliest first, for stories of at least `min_size` articles."""
        out = {}
        for members in self._members.values():
            if len(members) >= min_size:
                ordered = self._earliest(members)
                out[ordered[0]] = ordered
        return out

    def stories(self) -> dict[str, str]:
        """Article id -> story id, for every article."""
        out = {}
        for members in self._members.values():
            ordered = self._earliest(members)
            out.update(dict.fromkeys(ordered, ordered[0]))
        return out

    # --- persistence ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the groups and signatures to one .npz file, atomically (a reader never sees half a file)."""
        path = Path(path)
        ids = list(self._sigs)
        index = {doc: i for i, doc in enumerate(ids)}
        sigs = np.zeros((len(ids), self.params.num_perm), dtype=np.uint32)
        has_sig = np.zeros(len(ids), dtype=bool)
        for i, doc in enumerate(ids):
            if (sig := self._sigs[doc]) is not None:
                sigs[i] = sig
                has_sig[i] = True
        links = [(index[a], index[b]) for a in ids for b in self._links[a] if index[a] < index[b]]
        meta = {"format": FORMAT, "scheme": SCHEME, "threshold": self.params.threshold,
                "num_perm": self.params.num_perm, "shingle": self.params.shingle, "seed": self.params.seed,
                "min_shingles": MIN_SHINGLES, "next_seq": self._seq}
        arrays = {
            "meta": np.array(json.dumps(meta)),
            "ids": np.array(ids, dtype=str),
            "published": np.array([self._rank[d][1] for d in ids], dtype=str),
            "seq": np.array([self._rank[d][2] for d in ids], dtype=np.int64),
            "signatures": sigs,
            "has_signature": has_sig,
            "links": np.array(links, dtype=np.int64).reshape(-1, 2),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> Deduper:
        """Read a Deduper saved by save(); the LSH index is rebuilt from the signatures."""
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT or meta.get("scheme") != SCHEME:
                raise ValueError(f"{path}: near-duplicate file of format {meta.get('format')}/{meta.get('scheme')}, "
                                 f"expected {FORMAT}/{SCHEME}")
            ids = [str(x) for x in data["ids"]]
            published = [str(x) for x in data["published"]]
            seq = data["seq"].tolist()
            sigs = data["signatures"]
            has_sig = data["has_signature"]
            links = data["links"].tolist()
        self = cls(meta["threshold"], num_perm=meta["num_perm"], shingle=meta["shingle"], seed=meta["seed"])
        self._seq = meta["next_seq"]
        with self._lsh.insertion_session() as session:
            for i, doc in enumerate(ids):
                sig = sigs[i].copy() if has_sig[i] else None
                self._sigs[doc] = sig
                self._rank[doc] = (0 if published[i] else 1, published[i], seq[i])
                self._links[doc] = set()
                if sig is not None:
                    session.insert(doc, self._lean(sig), check_duplication=False)
        for a, b in links:
            self._links[ids[a]].add(ids[b])
            self._links[ids[b]].add(ids[a])
        self._regroup(set(ids))
        return self
