"""A Whoosh segment writer that pays per document and per term, not per posting.

Whoosh's SegmentWriter turns every posting (about 1,000 per news article) into a tuple, sorts
them all, spills them to disk with pickle and merges them back, then adds them one at a time to
a block writer that asks the per-document reader for the field length of each. FastSegmentWriter
puts the postings of a document into per-field columns (columns.ColumnPool), sorts them by term
with NumPy and encodes each block whole (blocks.encode_posting_lists). The files are Whoosh's own
(W3 codec): readers, updates, deletions and merges are unchanged, and tests/test_fastwriter.py checks
that both writers store the same postings. FastMpWriter runs it in Whoosh's writer processes, one
segment per process whatever the size of the build, in bounded memory.
"""

from __future__ import annotations

import contextlib
import pickle
import queue
from collections import Counter
from collections.abc import Callable

from whoosh import formats, multiproc
from whoosh.fields import FieldType
from whoosh.index import Index
from whoosh.system import unpack_uint
from whoosh.util import random_name
from whoosh.writing import SegmentWriter

from indexer.analysis import VietnameseTokenizer
from indexer.whoosh_format.blocks import value_kind
from indexer.whoosh_format.columns import ColumnPool
from indexer.whoosh_format.terms import TermsWriter

# The Positions value of a term seen once, by its position: most terms of a document are.
_ONE_POSITION: list[bytes] = []


def _one_position_values(fmt: formats.Positions, count: int) -> list[bytes]:
    """_ONE_POSITION, grown to hold fmt.encode([p]) for every position below count."""
    while len(_ONE_POSITION) < count:
        _ONE_POSITION.append(fmt.encode([len(_ONE_POSITION)]))
    return _ONE_POSITION


def _fast_postings(field: FieldType, value: object) -> tuple[list[bytes], list[float], list | None, int] | None:
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

    def __init__(self, ix: Index, limitmb: int = 128, **kwargs: object):
        """A writer of a new segment of ix, keeping up to limitmb MB of postings in memory."""
        # Separate files: Whoosh reads a compound segment through memoryviews that end up copied into memory
        # (a 150k-article index took 5 GB of RSS to open); plain files are read on demand.
        kwargs["compound"] = False
        super().__init__(ix, limitmb=limitmb, **kwargs)
        for name, field in self.schema.items():
            if field.vector or field.separate_spelling():
                raise NotImplementedError(f"{name}: term vectors and spelling words need Whoosh's own writer")
        self.pool = ColumnPool(self.schema, self._tempstorage.folder, limitmb * 1024 * 1024)
        TermsWriter.adopt(self.fieldwriter._tindex)

    def add_document(self, **fields: object) -> None:
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

    def _index_generic(self, fieldname: str, field: FieldType, value: object, fieldboost: float, docnum: int) -> int:
        """Postings of a field through Whoosh's field.index(); returns the field length."""
        terms, weights, extra = [], [], []
        kind = value_kind(field.format)
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
        """The error, with the process's exit code."""
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

    def __init__(self, ix: Index, procs: int, batchsize: int = 64, limitmb: int = 128, **kwargs: object):
        """A writer of ix running procs processes, handing them batchsize documents at a time."""
        kwargs["compound"] = False
        super().__init__(ix, procs=procs, batchsize=batchsize, multisegment=True, limitmb=limitmb, **kwargs)

    def _new_task(self) -> FastSubWriter:
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

    def process_died(self, task: FastSubWriter) -> None:
        """Called when a writer process has ended while documents were still being handed out: raise."""
        raise WriterProcessDied(f"a writer process ended with exit code {task.exitcode}", task.exitcode)

    def _put(self, job: tuple[str, int] | None) -> None:
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

    def _commit(self, mergetype: Callable | None, optimize: bool, merge: bool) -> None:
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
