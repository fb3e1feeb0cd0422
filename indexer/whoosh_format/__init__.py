"""Whoosh's on-disk format (W3 codec of whoosh-reloaded 2.7.5), written and read side by side."""
