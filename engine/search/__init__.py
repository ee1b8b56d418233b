"""Search: a query photo in, ranked catalogue objects out, in three stages.

- `candidates`: query views -> embedder -> vector index -> one candidate per object;
  inputs: embedder, index, photo refs.
- `verify`: stored local features of each candidate matched into the query's (inliers,
  matched box); inputs: query features, stored-features lookup, candidates.
- `local`: vote and verify over the descriptor index (every catalogue photo's keypoints),
  fused into the candidates; inputs: query features, descriptor index, stored features.
- `decide`: match (geometry verified), lead (similar, not verified) or none, the ranking and
  region ownership; inputs: candidates, calibration, settings values. Nothing there touches
  storage or a model.

`search` (in `pipeline`) runs them in one of two modes: verified, or global only.
"""

from engine.search.candidates import Candidate, embed_query, query_views
from engine.search.decide import decision_threshold
from engine.search.pipeline import QUERY_FEATURES, search, whole_vector_key

__all__ = [
    "QUERY_FEATURES",
    "Candidate",
    "decision_threshold",
    "embed_query",
    "query_views",
    "search",
    "whole_vector_key",
]
