"""Exact top-k over row blocks of vectors, for the ``auto`` index while it is small."""

from __future__ import annotations

import numpy as np

from storage.index.filters import IdFilter

__all__ = ["exact_top_k"]


def exact_top_k(
    *,
    blocks: list[np.ndarray],
    row_ids: np.ndarray,
    queries: np.ndarray,
    k: int,
    allowed: IdFilter | None,
    out: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``out`` (scores, ids) with the ``k`` best rows of ``blocks`` (stacked, row ``r``
    holding photo ``row_ids[r]``, -1: dead) per query; ties broken by id."""
    out_s, out_i = out
    sims = np.concatenate([b @ queries.T for b in blocks]).T  # (queries, rows)
    alive = row_ids >= 0 if allowed is None else allowed.mask(row_ids) & (row_ids >= 0)
    sims[:, ~alive] = -np.inf
    m = min(k, int(alive.sum()))
    top = np.argpartition(-sims, m - 1, axis=1)[:, :m] if m < sims.shape[1] else None
    for i in range(len(queries)):
        cand = top[i] if top is not None else np.flatnonzero(alive)
        # Ties broken by id, like an exact FAISS search over ids added in order.
        order = np.lexsort((row_ids[cand], -sims[i, cand]))[:m]
        out_s[i, :m], out_i[i, :m] = sims[i, cand[order]], row_ids[cand[order]]
    return out_s, out_i
