"""The vector index seam: the protocol (`base`), one module per implementation (`faiss_flat`,
`memory`), the registry that picks one by name (`registry`) and snapshots in the blob store
(`snapshots`)."""
