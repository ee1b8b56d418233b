"""Reading a catalogue CSV: one row per photo, several rows may share an object.

Columns: ``image`` (path relative to the CSV), ``object_id``, and optionally any Object ID field
by name (``title``, ``maker``, ``object_type``, ...), ``institution``, ``status`` and ``view``.
A bad row becomes a `RowError` naming the line; the good rows go on.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ingest.photos import PhotoItem
from kernel.errors import InvalidInput
from kernel.schemas import OBJECT_ID_FIELDS, ObjectCreate

__all__ = [
    "CatalogueCsv",
    "RowError",
    "csv_error_message",
    "csv_rows",
    "read_catalogue_csv",
    "resolve_path",
]

REQUIRED = ("image", "object_id")
OPTIONAL = ("institution", "status", "view", *OBJECT_ID_FIELDS)


@dataclass(frozen=True)
class RowError:
    source: str
    message: str


@dataclass
class CatalogueCsv:
    path: Path
    rows: list[PhotoItem | RowError]
    ignored_columns: list[str]


def validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "row"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def csv_error_message(exc: csv.Error) -> str:
    """The parser's complaint in words a user can act on."""
    text = str(exc)
    if "field larger than field limit" in text:
        return f"a field is longer than {csv.field_size_limit():,} characters"
    return f"not valid CSV ({text})"


def csv_rows(
    reader: csv.DictReader[str],
) -> Iterator[tuple[int, dict[str | Any, str | Any] | csv.Error]]:
    """``(line number, row)`` for each row, or ``(line number, error)`` for a line the CSV
    parser refuses; the reader goes on with the next line."""
    while True:
        before = reader.line_num
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The parser gives up before counting the line it refused.
            yield max(reader.line_num, before + 1, 2), exc
            continue
        yield reader.line_num, row


def _read_file(path: Path) -> bytes:
    return path.read_bytes()


def resolve_path(base: Path, relative: str) -> Path:
    """``base / relative``, following symbolic links that a checkout wrote as plain files.

    Git on a filesystem (or with ``core.symlinks=false``) without symlinks writes a link as a
    small text file holding its target; evaluation sets share catalogues through such links.
    """
    path = base
    for part in Path(relative).parts:
        path = path / part
        if path.is_file() and not path.suffix and path.stat().st_size < 1024:
            target = path.read_text(errors="replace").strip()
            if target and "\n" not in target and (path.parent / target).exists():
                path = (path.parent / target).resolve()
    return path.resolve()


def read_catalogue_csv(path: Path, *, institution: str = "default") -> CatalogueCsv:
    """Parse the whole CSV up front (it is small) so that progress can show a total."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not a UTF-8 text file") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InvalidInput(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(columns) or 'none'}"
        )
    ignored = [c for c in columns if c not in REQUIRED and c not in OPTIONAL]
    base = path.parent
    rows: list[PhotoItem | RowError] = []
    for line, raw in csv_rows(reader):
        if isinstance(raw, csv.Error):
            # A malformed line (e.g. a field over csv.field_size_limit) spoils that row only.
            source = f"{path.name}:{line}"
            rows.append(RowError(source, f"{source}: {csv_error_message(raw)}"))
            continue
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        source = f"{path.name}:{line}"
        if not row.get("image"):
            rows.append(RowError(source, f"{source}: empty image path"))
            continue
        fields = {k: v for k, v in row.items() if k in OPTIONAL and k != "view" and v}
        fields.setdefault("institution", institution)
        try:
            record = ObjectCreate.model_validate({"object_id": row.get("object_id", ""), **fields})
        except ValidationError as exc:
            rows.append(RowError(source, f"{source}: {validation_message(exc)}"))
            continue
        image_path = resolve_path(base, row["image"])
        if not image_path.is_file():
            rows.append(RowError(source, f"{source}: image file {row['image']} not found"))
            continue
        rows.append(
            PhotoItem(
                record=record,
                source=f"{source} ({row['image']})",
                load=partial(_read_file, image_path),
                view=row.get("view") or None,
            )
        )
    return CatalogueCsv(path=path, rows=rows, ignored_columns=ignored)


def iter_items(parsed: CatalogueCsv) -> Iterator[PhotoItem]:
    for row in parsed.rows:
        if isinstance(row, PhotoItem):
            yield row
