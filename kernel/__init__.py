"""The kernel every other package imports: settings, the error tree, schemas and closed sets.

It imports nothing of artmatch's own.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
