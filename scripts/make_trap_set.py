"""Make a "small-catalogue trap" set: a small catalogue and hundreds of queries that are NOT in it.

With ten objects in the catalogue, the nearest object to any photo is still one of those ten;
a search that calls it a match because nothing else is near sends police to an honest owner.
Every query of this set has the ground truth ``objects: []``, so `artmatch eval OUT` reports
its false_match_rate (= wrong_match_rate here): the share of unrelated photos called a match.

    python scripts/make_trap_set.py /tmp/trap10                          # 10 objects
    python scripts/make_trap_set.py /tmp/trap100 --catalogue-size 100
    python scripts/make_trap_set.py /tmp/trap1000 --catalogue-size 1000  # + distractor objects

Queries (``kind`` in ground_truth.json says which):
- ``distractor``: unrelated photos (objects, animals, products) from the distractor folder;
- ``other-painting``: catalogue and query photos of source objects left out of the catalogue;
- ``background``: crops of seizure-lot photos outside every ground-truth box (tables, cloth,
  blurred clutter, sometimes an unrelated item);
- ``texture``: generated wallpaper, weave, stripes and wood-grain patterns;
- ``painting-crop``: tight crops (40-70 % of each side) of paintings left out of the catalogue.

The output folder is in the evaluation layout (/work/shared/eval/README.md). Source photos are
linked (``--copy`` copies them); crops and textures are written as JPEG. Never write it inside
the repository: the evaluation photos must not be committed. Same arguments, same set.

A catalogue larger than the source set takes distractor photos as extra objects, one photo
each; those are then never queries, nor are the distractors drawn into the seizure lots (found
by replaying make_lots.py's seeded choices, checked against the lots' ground truth).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from ingest.catalogue_csv import resolve_path

_EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "eval"
_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
#: Ids of the source set that show one painting, or two near-identical ones: when one is in
#: the catalogue, photos of the other are not "unrelated". Found with
#: scripts/measure_near_duplicates.py: bbdd_00043 = bbdd_00249 (561 inliers, a double entry),
#: bbdd_00179 ~ bbdd_00219 (27 inliers, a sibling work). Two different paintings in one gilt
#: frame pattern (bbdd_00135, bbdd_00237, 67 inliers on the frame) stay a fair trap.
KNOWN_SAME_OBJECT: dict[str, list[tuple[str, str]]] = {
    "museum-paintings": [("bbdd_00043", "bbdd_00249"), ("bbdd_00179", "bbdd_00219")]
}


class _Help(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=_Help,
        epilog="Queries (" + __doc__.split("Queries (")[1].split("\n\n")[0],
    )
    ap.add_argument("out", type=Path, help="output folder (outside the repository; replaced)")
    ap.add_argument("--catalogue-size", type=int, default=10, help="objects in the catalogue")
    ap.add_argument("--unrelated", type=int, default=500, help="distractor + other-painting photos")
    ap.add_argument("--backgrounds", type=int, default=100, help="seizure-lot background crops")
    ap.add_argument("--textures", type=int, default=40, help="generated textures")
    ap.add_argument("--painting-crops", type=int, default=60, help="tight crops of paintings")
    ap.add_argument("--seed", type=int, default=0, help="same seed, same set")
    ap.add_argument(
        "--source",
        type=Path,
        default=_EVAL / "museum-paintings",
        help="set whose objects fill the catalogue",
    )
    ap.add_argument(
        "--distractors", type=Path, default=_EVAL / "distractors", help="unrelated photos"
    )
    ap.add_argument(
        "--lots",
        type=Path,
        default=_EVAL / "seizure-lots",
        help="lots (with boxes) for background crops",
    )
    ap.add_argument("--lots-seed", type=int, default=1, help="seed make_lots.py made --lots with")
    ap.add_argument(
        "--keep-out",
        type=float,
        default=0.4,
        help="share of source objects never put in the catalogue, so other paintings remain "
        "as queries (binds only for large catalogues)",
    )
    ap.add_argument(
        "--same-object",
        action="append",
        default=[],
        metavar="ID,ID",
        help="two source ids known to be one object (repeatable; adds to the built-in list)",
    )
    ap.add_argument("--copy", action="store_true", help="copy source photos instead of linking")
    args = ap.parse_args(argv)
    if args.catalogue_size < 1:
        ap.error("--catalogue-size must be at least 1")
    if args.out.resolve().is_relative_to(Path(__file__).resolve().parents[1]):
        ap.error(f"{args.out}: inside the repository; the evaluation photos must stay out of it")
    return args


def _source_objects(set_dir: Path) -> dict[str, list[Path]]:
    objects: dict[str, list[Path]] = {}
    with (set_dir / "catalogue.csv").open(encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            objects.setdefault(row["object_id"], []).append(resolve_path(set_dir, row["image"]))
    return objects


def _query_photos(set_dir: Path) -> list[tuple[Path, set[str]]]:
    gt = json.loads((set_dir / "ground_truth.json").read_text())["queries"]
    return [(resolve_path(set_dir, q["image"]), set(q["objects"])) for q in gt]


def _lot_distractors(lots: Path, distractors: Path, seed: int) -> set[Path] | None:
    """The distractor photos make_lots.py drew into the lots (backgrounds and unrelated items),
    by replaying its seeded choices; None if the replay does not reproduce the ground truth."""
    rows = list(csv.DictReader((lots / "catalogue.csv").open(encoding="utf-8-sig")))
    objs: dict[str, list[str]] = {}
    for r in rows:
        objs.setdefault(r["object_id"], []).append(r["image"])
    ids = sorted(objs)
    dis = sorted(distractors.rglob("*.jpg"))
    gt = json.loads((lots / "ground_truth.json").read_text())["queries"]
    prng = random.Random(seed)
    used: set[Path] = set()
    for i, lot in enumerate(gt):
        prng.choice([(1600, 1200), (1200, 1600), (1280, 960), (960, 1280)])
        used.add(prng.choice(dis))
        prng.uniform(2, 8)
        k = 0 if i % 10 == 9 else prng.choice([1, 2, 2, 3, 3, 4])
        chosen = prng.sample(ids, k)
        if chosen != lot["objects"]:
            return None
        n_other = prng.choice([0, 1, 1, 2]) if k else prng.choice([1, 2, 3])
        items: list[str | None] = [*chosen, *([None] * n_other)]
        prng.shuffle(items)
        for o in items:
            if o is None:
                used.add(prng.choice(dis))
            else:
                prng.choice(objs[o])
            prng.uniform(0, 1)  # scale
        prng.uniform(0, 1)  # blur
        prng.uniform(1, 6)  # noise
        prng.randint(55, 85)  # JPEG quality
    return used


def _free_crop(
    size: tuple[int, int], boxes: list[list[int]], rng: np.random.Generator
) -> tuple[int, int, int, int] | None:
    """A rectangle of 20-45 % of each side that overlaps no box (grown by a margin)."""
    w, h = size
    grown = [(x0 - 12, y0 - 12, x1 + 12, y1 + 12) for x0, y0, x1, y1 in boxes]
    for _ in range(60):
        cw, ch = int(w * rng.uniform(0.2, 0.45)), int(h * rng.uniform(0.2, 0.45))
        x, y = int(rng.integers(0, w - cw)), int(rng.integers(0, h - ch))
        if all(x + cw <= a or b <= x or y + ch <= c or d <= y for a, c, b, d in grown):
            return x, y, x + cw, y + ch
    return None


def texture(rng: np.random.Generator, size: int = 480) -> Image.Image:
    """A plain repeating pattern: wallpaper motifs, a weave, stripes or wood grain."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    kind = int(rng.integers(0, 4))
    period = float(rng.uniform(12, 60))
    if kind == 0:  # wallpaper: a motif on a lattice
        u, v = 2 * np.pi * xx / period, 2 * np.pi * yy / period
        field = np.sin(u) * np.cos(v) + 0.5 * np.cos(2 * u + v)
    elif kind == 1:  # weave
        field = np.sign(np.sin(2 * np.pi * xx / period)) * np.sin(2 * np.pi * yy / period * 2)
    elif kind == 2:  # stripes at an angle
        a = rng.uniform(0, np.pi)
        field = np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period)
    else:  # wood grain: rings bent by low-frequency noise
        low = rng.normal(size=(6, 6)).astype(np.float32)
        bend = np.asarray(Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC))
        field = np.sin(2 * np.pi * (np.hypot(xx - size / 2, yy * 0.2) / period + 3 * bend))
    field = (field - field.min()) / (np.ptp(field) + 1e-6)
    c0, c1 = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
    rgb = c0 * (1 - field[..., None]) + c1 * field[..., None]
    rgb += rng.normal(0, rng.uniform(2, 10), rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


class _Writer:
    def __init__(self, out: Path, *, copy: bool) -> None:
        self.out, self.copy = out, copy

    def link(self, src: Path, name: str) -> str:
        dest = self.out / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self.copy:
            shutil.copyfile(src, dest)
        else:
            dest.symlink_to(src.resolve())
        return name

    def image(self, img: Image.Image, name: str) -> str:
        dest = self.out / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        img.convert("RGB").save(dest, "JPEG", quality=90)
        return name


def _sample(rng: random.Random, pool: Iterable[Path], k: int) -> list[Path]:
    items = sorted(set(pool))
    return rng.sample(items, min(k, len(items)))


def _flat(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix().replace("/", "_")


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    rng, nrng = random.Random(a.seed), np.random.default_rng(a.seed)
    objects = _source_objects(a.source)
    same = [tuple(p.split(",")) for p in a.same_object]
    same += KNOWN_SAME_OBJECT.get(a.source.name, [])
    ids = sorted(objects)
    n_paintings = min(a.catalogue_size, int(len(ids) * (1 - a.keep_out)))
    in_cat = set(rng.sample(ids, n_paintings))
    # A twin of a catalogue object shows that object: neither a query nor "unrelated".
    kin = {x for pair in same for x in pair if in_cat & set(pair)}
    all_distractors = sorted(p for p in a.distractors.rglob("*") if p.suffix.lower() in _SUFFIXES)
    n_extra = a.catalogue_size - n_paintings
    lot_crops = a.backgrounds
    extra: list[Path] = []
    if n_extra:
        used = _lot_distractors(a.lots, a.distractors, a.lots_seed) if a.backgrounds else set()
        if used is None:
            print("cannot replay the lots' choices: no background crops", file=sys.stderr)
            used, lot_crops = set(), 0
        extra = _sample(rng, (p for p in all_distractors if p not in used), n_extra)
        if len(extra) < n_extra:
            print(f"only {len(extra)} distractors for {n_extra} extra objects", file=sys.stderr)

    if a.out.exists():
        shutil.rmtree(a.out)
    a.out.mkdir(parents=True)
    w = _Writer(a.out, copy=a.copy)
    rows = []
    for oid in sorted(in_cat):
        for p in objects[oid]:
            rows.append({"image": w.link(p, f"catalogue/{p.name}"), "object_id": oid})
    for p in extra:
        name = _flat(p, a.distractors)
        rows.append({"image": w.link(p, f"catalogue/d_{name}"), "object_id": f"d:{name}"})
    with (a.out / "catalogue.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "object_id"])
        writer.writeheader()
        writer.writerows(rows)

    queries: list[dict[str, object]] = []

    def add(name: str, kind: str, origin: Path) -> None:
        queries.append({"image": name, "objects": [], "kind": kind, "from": str(origin)})

    # Other paintings: every photo of a left-out object, and the source's query photos that
    # show only left-out objects (phone photos: frame, wall, reflections).
    out_ids = sorted(set(ids) - in_cat - kin)
    others = [p for oid in out_ids for p in objects[oid]]
    others += [p for p, shown in _query_photos(a.source) if not shown & (in_cat | kin)]
    n_other = min(len(others), a.unrelated // 2)
    for i, p in enumerate(_sample(rng, others, n_other)):
        add(w.link(p, f"queries/other_{i:04d}{p.suffix}"), "other-painting", p)
    pool = [p for p in all_distractors if p not in set(extra)]
    for i, p in enumerate(_sample(rng, pool, a.unrelated - n_other)):
        add(w.link(p, f"queries/distractor_{i:04d}{p.suffix}"), "distractor", p)

    lots = json.loads((a.lots / "ground_truth.json").read_text())["queries"] if lot_crops else []
    for i in range(lot_crops):
        lot = lots[int(nrng.integers(0, len(lots)))]
        path = resolve_path(a.lots, lot["image"])
        with Image.open(path) as im:
            box = _free_crop(im.size, [b["box"] for b in lot.get("boxes", [])], nrng)
            if box is not None:
                add(w.image(im.crop(box), f"queries/background_{i:04d}.jpg"), "background", path)
    for i in range(a.textures):
        add(w.image(texture(nrng), f"queries/texture_{i:04d}.jpg"), "texture", Path("generated"))
    left_out = [p for oid in out_ids for p in objects[oid]]
    for i in range(a.painting_crops if left_out else 0):
        p = left_out[int(nrng.integers(0, len(left_out)))]
        with Image.open(p) as im:
            cw, ch = (int(s * nrng.uniform(0.4, 0.7)) for s in im.size)
            x, y = int(nrng.integers(0, im.width - cw)), int(nrng.integers(0, im.height - ch))
            add(
                w.image(im.crop((x, y, x + cw, y + ch)), f"queries/crop_{i:04d}.jpg"),
                "painting-crop",
                p,
            )
    (a.out / "ground_truth.json").write_text(json.dumps({"queries": queries}, indent=1))
    kinds: dict[str, int] = {}
    for q in queries:
        kinds[str(q["kind"])] = kinds.get(str(q["kind"]), 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in kinds.items())
    print(
        f"{a.out}: {len(in_cat) + len(extra)} objects ({len(rows)} photos); "
        f"{len(queries)} queries not in the catalogue: {summary}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
