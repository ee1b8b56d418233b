"""The HTTP edge of artmatch: a FastAPI app (JSON API under /api/v1 and server-rendered pages)."""
