"""What keeps things: blob stores, the catalogue database, vector-index files."""
