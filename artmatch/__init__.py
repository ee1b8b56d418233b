"""artmatch: find stolen cultural objects by matching photos against museum catalogues."""

__all__ = ["__version__"]
__version__ = "0.1.0"
