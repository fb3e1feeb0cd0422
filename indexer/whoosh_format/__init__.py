"""Whoosh's on-disk format (W3 codec of whoosh-reloaded 2.7.5), written and read side by side.

constants      the layout both sides share: posting list header, block size, term entry structs
terms          a segment's terms hash file: TermsWriter and the two-read lookup hash_get()/PreadFile
blocks         posting blocks: encode_posting_lists() and list_arrays()/block_arrays()/leaf_matcher()
columns        ColumnPool: a segment's postings as columns per field, spilled to sorted runs on disk
flat_postings  FlatWriter/FlatPostings: a position-free copy of a segment's text postings as plain arrays
segment_writer FastSegmentWriter, FastSubWriter, FastMpWriter: Whoosh writers built on ColumnPool
reader         IndexArrays: per-index NumPy reads (postings, phrases, lengths, columns) for scoring
"""
