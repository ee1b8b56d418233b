"""A self-describing byte format for indexes made of several arrays (`VectorIndex.to_bytes`
of the ``auto`` index): a magic, a JSON header, then the arrays as an ``.npz``."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import numpy as np

__all__ = ["MAGIC", "pack_arrays", "unpack_arrays"]

MAGIC = b"AMIDX1\n"
_LEN = struct.Struct("<I")


def pack_arrays(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    head = json.dumps(header).encode()
    out = io.BytesIO()
    np.savez(out, **arrays)  # type: ignore[arg-type]
    return MAGIC + _LEN.pack(len(head)) + head + out.getvalue()


def unpack_arrays(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of `pack_arrays` output; `ValueError` if it is not that."""
    if not data.startswith(MAGIC):
        raise ValueError("not an artmatch index snapshot")
    pos = len(MAGIC)
    (size,) = _LEN.unpack_from(data, pos)
    header = json.loads(data[pos + _LEN.size : pos + _LEN.size + size])
    body = io.BytesIO(data[pos + _LEN.size + size :])
    with np.load(body, allow_pickle=False) as npz:
        return header, {name: npz[name] for name in npz.files}
