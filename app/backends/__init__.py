"""Read-side backends: the embedded Whoosh index and a Typesense cluster (contract: indexer/backend.py)."""
