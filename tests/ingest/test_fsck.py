"""`artmatch fsck`: each kind of inconsistency is found, repaired where it can be, and the exit
code says whether the store is consistent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.services import Services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.fsck import FsckReport, check_store, repair_store, saved_index
from ingest.photos import ingest_photos
from storage.catalogue import Embedding
from tests.utils.catalogue import write_catalogue

NO_GRACE = dt.timedelta(0)


@pytest.fixture
def stocked(services: Services, tmp_path: Path) -> Services:
    csv_path = write_catalogue(tmp_path / "cat", n_objects=4)
    ingest_photos(services, iter_items(read_catalogue_csv(csv_path)))
    return services


def _check(services: Services, grace: dt.timedelta = NO_GRACE) -> FsckReport:
    index, source = saved_index(services.settings, services.blobs, services.embedder)
    return check_store(
        catalogue=services.catalogue,
        blobs=services.blobs,
        embedder=services.embedder,
        index=index,
        index_source=source,
        grace=grace,
    )


def test_a_fresh_import_is_consistent(stocked: Services) -> None:
    report = _check(stocked)
    assert report.consistent and report.photos == 4 and report.blobs == 12  # + features
    assert report.index_source == "local" and report.lines()[-1] == "consistent"


def test_orphan_blobs_wait_for_the_grace_period(stocked: Services) -> None:
    stocked.blobs.put("photos/ab/abandoned", b"half an import")
    stocked.blobs.put("index/not-ours.json", b"{}")  # other prefixes are not fsck's business
    young = _check(stocked, grace=dt.timedelta(hours=1))
    assert young.pending_blobs == ["photos/ab/abandoned"] and young.consistent
    assert repair_store(stocked, young) == []
    assert stocked.blobs.exists("photos/ab/abandoned")

    old = _check(stocked)
    assert old.orphan_blobs == ["photos/ab/abandoned"] and not old.consistent
    assert repair_store(stocked, old) == ["removed 1 orphan blob(s)"]
    assert not stocked.blobs.exists("photos/ab/abandoned")
    assert stocked.blobs.exists("index/not-ours.json")
    assert _check(stocked).consistent


def test_force_removes_recent_orphans(stocked: Services) -> None:
    stocked.blobs.put("thumbnails/ab/abandoned.jpg", b"x")
    report = _check(stocked, grace=dt.timedelta(hours=1))
    assert repair_store(stocked, report, force=True) == ["removed 1 orphan blob(s)"]
    assert _check(stocked).consistent


def test_missing_thumbnail_is_made_again_missing_photo_is_reported(stocked: Services) -> None:
    first, second = stocked.catalogue.photos_of("obj-0")[0], stocked.catalogue.photos_of("obj-1")[0]
    stocked.blobs.delete(first.thumbnail_key)
    stocked.blobs.delete(second.blob_key)
    report = _check(stocked)
    assert report.missing_thumbnails == [(first.photo_id, first.thumbnail_key)]
    assert report.missing_photos == [(second.photo_id, second.blob_key)]
    actions = repair_store(stocked, report)
    assert "made 1 missing thumbnail(s) again" in actions
    assert any("cannot be repaired" in a for a in actions)
    assert stocked.blobs.exists(first.thumbnail_key)
    after = _check(stocked)
    assert not after.consistent and after.missing_photos and not after.missing_thumbnails


def test_vectors_missing_from_the_index_are_reindexed(stocked: Services) -> None:
    gone = int(stocked.index.ids()[0])
    stocked.index.remove([gone])
    stocked.index.save()
    report = _check(stocked)
    assert report.not_in_index == [gone] and not report.consistent
    held = stocked.descriptors.size
    assert repair_store(stocked, report) == [
        "rebuilt the index from 4 stored vector(s)",
        f"rebuilt the descriptor index from {held} stored descriptor(s)",
    ]
    assert _check(stocked).consistent


def test_index_ids_without_a_row_and_photos_without_a_vector(stocked: Services) -> None:
    victim = stocked.catalogue.photos_of("obj-2")[0].photo_id
    with Session(stocked.catalogue.engine) as session:
        session.execute(delete(Embedding).where(Embedding.photo_id == victim))
        session.commit()
    report = _check(stocked)
    assert report.without_vector == [victim] and report.not_in_catalogue == [victim]
    actions = repair_store(stocked, report)
    assert actions[0] == "embedded 1 photo(s) that had no vector"
    assert _check(stocked).consistent and stocked.index.size == 4


def test_no_saved_index_counts_as_missing_vectors(stocked: Services) -> None:
    for path in stocked.settings.index_path.iterdir():
        path.unlink()
    report = _check(stocked)
    assert report.index_source == "none" and report.no_index and len(report.not_in_index) == 4
    assert "no saved index for 4 stored vector(s)" in report.lines()
    repair_store(stocked, report)
    assert _check(stocked).consistent


def test_cli_exit_codes(stocked: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import app

    monkeypatch.setenv("ARTMATCH_EMBEDDER__NAME", "fake")
    from kernel.settings import get_settings

    get_settings.cache_clear()
    home = ["--home", str(stocked.settings.home)]
    stocked.close()
    runner = CliRunner()
    try:
        result = runner.invoke(app, [*home, "fsck"])
        assert result.exit_code == 0 and "consistent" in result.output, result.output
        (stocked.settings.blob_path / "photos" / "zz").mkdir(parents=True)
        (stocked.settings.blob_path / "photos" / "zz" / "orphan").write_bytes(b"x")
        result = runner.invoke(app, [*home, "fsck"])
        assert result.exit_code == 0 and "recent orphan" in result.output
        result = runner.invoke(app, [*home, "fsck", "--grace-minutes", "0"])
        assert result.exit_code == 1 and "INCONSISTENT" in result.output
        result = runner.invoke(app, [*home, "fsck", "--repair", "--grace-minutes", "0"])
        assert result.exit_code == 0, result.output
        assert "removed 1 orphan blob(s)" in result.output
        assert "after repair: consistent" in result.output
    finally:
        get_settings.cache_clear()


def test_a_stale_descriptor_index_is_reported_on_its_own_and_rebuilt(
    stocked: Services, tmp_path: Path
) -> None:
    from engine.services import build_services
    from models.embedders import FakeEmbedder

    settings = stocked.settings
    stocked.close()
    # A process adds a photo and dies before closing: the vector index is saved with every
    # batch, the descriptor index only at close.
    other = build_services(settings, embedder=FakeEmbedder())
    extra = write_catalogue(tmp_path / "extra", n_objects=5)
    [added] = [
        o.photo_id
        for o in ingest_photos(other, list(iter_items(read_catalogue_csv(extra)))[4:])
        if o.photo_id is not None
    ]
    other.catalogue.close()

    def check() -> FsckReport:
        index, source = saved_index(settings, other.blobs, other.embedder)
        return check_store(
            catalogue=other.catalogue,
            blobs=other.blobs,
            embedder=other.embedder,
            index=index,
            index_source=source,
            grace=NO_GRACE,
            settings=settings,
        )

    report = check()
    assert not report.not_in_index and not report.not_in_catalogue
    # Reported, not failed: a running service saves it only when it stops, and the next
    # process to open it catches it up.
    assert report.not_in_descriptors == [added] and report.consistent
    lines = "\n".join(report.lines())
    assert "1 photo(s) missing from the saved descriptor index" in lines
    assert "behind the catalogue: caught up" in lines
    actions = repair_store(other, report)
    assert any("rebuilt the descriptor index" in a for a in actions)
    assert check().consistent


def test_missing_feature_blob_is_found_and_extracted_again(stocked: Services) -> None:
    refs = stocked.catalogue.feature_refs()
    assert len(refs) == 4 and all(k.startswith("features/") for _, k in refs)
    photo_id, key = refs[1]
    stocked.blobs.delete(key)
    report = _check(stocked)
    assert report.missing_features == [(photo_id, key)] and not report.consistent
    assert any("local-feature row(s) whose blob is missing" in line for line in report.lines())
    actions = repair_store(stocked, report)
    assert "extracted lost local features of 1 photo(s) again" in actions
    assert stocked.blobs.exists(key) and _check(stocked).consistent


def test_orphan_feature_blob_is_removed(stocked: Services) -> None:
    stocked.blobs.put("features/rootsift-640-1000/ab/abandoned", b"x")
    report = _check(stocked)
    assert report.orphan_blobs == ["features/rootsift-640-1000/ab/abandoned"]
    assert repair_store(stocked, report) == ["removed 1 orphan blob(s)"]
    assert _check(stocked).consistent


def test_the_auto_index_is_checked_with_its_log_replayed(stocked: Services, tmp_path: Path) -> None:
    """A second batch and a removal go to the ``auto`` index's log, not its base: fsck reads
    the base plus the log, and a repair rebuilds it as ``auto`` again."""
    assert stocked.settings.index.kind == "auto"
    csv_path = write_catalogue(tmp_path / "more", n_objects=6)
    ingest_photos(stocked, iter_items(read_catalogue_csv(csv_path)))
    logs = list(stocked.settings.index_path.glob("*.auto-*.log"))
    assert len(logs) == 1 and logs[0].stat().st_size > 0  # the batch was appended
    assert _check(stocked).consistent
    gone = int(stocked.index.ids()[-1])
    stocked.index.remove([gone])
    stocked.index.save()
    report = _check(stocked)
    assert report.index_source == "local" and report.not_in_index == [gone]
    repair_store(stocked, report)
    assert _check(stocked).consistent
    assert list(stocked.settings.index_path.glob("*.auto.json"))
