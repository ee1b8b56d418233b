"""Thin route handlers, one module per area; `service.main` includes their routers."""
