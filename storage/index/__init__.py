"""The vector index seam: the protocol, its implementations and snapshots in the blob store."""
