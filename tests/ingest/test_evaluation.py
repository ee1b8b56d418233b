"""`artmatch eval` figures: wrong matches over all queries, right objects left as leads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import ingest.evaluation as evaluation
from kernel.enums import Decision, ObjectStatus, ThresholdOn
from kernel.schemas import SearchHit, SearchResult
from kernel.settings import Settings
from models.embedders import FakeEmbedder
from models.images import DecodedImage
from tests.utils.catalogue import write_catalogue
from tests.utils.images import jpeg_bytes, photographed, textured_object


def _result(hits: list[tuple[str, Decision]]) -> SearchResult:
    return SearchResult(
        query_sha256="0" * 64,
        query_size=(100, 100),
        threshold_on=ThresholdOn.CONFIDENCE,
        threshold=0.5,
        verification=True,
        model="fake",
        index_version=1,
        objects_searched=4,
        statuses=None,
        institutions=None,
        hits=[
            SearchHit(
                rank=rank,
                object_id=object_id,
                institution="eval",
                status=ObjectStatus.IN_COLLECTION,
                title=None,
                maker=None,
                similarity=0.9,
                confidence=0.9 if decision is Decision.MATCH else 0.3,
                decision=decision,
                is_match=decision is Decision.MATCH,
                photo_id=rank,
                photo_view=None,
                thumbnail_key="t",
            )
            for rank, (object_id, decision) in enumerate(hits, start=1)
        ],
    )


def test_wrong_matches_and_unverified_objects() -> None:
    result = _result(
        [("a", Decision.MATCH), ("b", Decision.LEAD), ("c", Decision.MATCH), ("d", Decision.NONE)]
    )
    assert evaluation.wrong_matches(result, {"a", "b"}) == ["c"]
    assert evaluation.wrong_matches(result, {"a", "c"}) == []
    assert evaluation.wrong_matches(result, set()) == ["a", "c"]
    assert evaluation.unverified_objects(result, {"a", "b"}) == {"b"}
    # A lead for an object the query does not show, or an unlisted right object: not counted.
    assert evaluation.unverified_objects(result, {"a", "d"}) == set()


# query name -> (ground truth, what the search answers)
_CANNED: dict[str, tuple[list[str], list[tuple[str, Decision]]]] = {
    "q0": (["obj-0"], [("obj-0", Decision.MATCH)]),
    "q1": (["obj-1"], [("obj-1", Decision.LEAD), ("obj-2", Decision.NONE)]),
    "q2": (
        ["obj-2", "obj-3"],
        [("obj-2", Decision.MATCH), ("obj-3", Decision.LEAD), ("obj-0", Decision.MATCH)],
    ),
    "q3": ([], [("obj-1", Decision.MATCH)]),
    "q4": ([], [("obj-0", Decision.LEAD)]),
}


def test_eval_reports_wrong_match_rate_and_unverified_leads(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "set"
    write_catalogue(root, n_objects=4)
    (root / "queries").mkdir()
    answers: dict[str, SearchResult] = {}
    gt = []
    for seed, (name, (objects, hits)) in enumerate(_CANNED.items()):
        data = jpeg_bytes(photographed(textured_object(50 + seed), seed=seed))
        (root / "queries" / f"{name}.jpg").write_bytes(data)
        answers[hashlib.sha256(data).hexdigest()] = _result(hits)
        gt.append({"image": f"queries/{name}.jpg", "objects": objects})
    (root / "ground_truth.json").write_text(json.dumps({"queries": gt}))

    def canned_search(services: object, image: DecodedImage, **_: object) -> SearchResult:
        return answers[image.sha256]

    monkeypatch.setattr(evaluation, "search", canned_search)
    report = evaluation.run_eval(root, settings=settings, embedder=FakeEmbedder())
    figures = report.as_dict()
    assert figures["queries"] == 5
    # Only q3 among the two "not in the catalogue" queries: the old figure, unchanged.
    assert figures["false_match_rate"] == 0.5
    # q2 (obj-0 called a match beside its real objects) and q3, of all 5 queries.
    assert figures["wrong_match_queries"] == 2
    assert figures["wrong_match_rate"] == 0.4
    # q1 (its object only a lead) and q2 (obj-3 only a lead), of the 3 queries with objects.
    assert figures["unverified_lead_queries"] == 2
    assert figures["unverified_leads"] == round(2 / 3, 4)
    assert figures["recall@1"] == 1.0
