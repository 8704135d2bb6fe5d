"""The weights phototag ships: listed, small, trained, and used by `index` with no flags."""

import csv
import shutil

import pytest
from safetensors import safe_open

from phototag import weights
from phototag.train.datasets import Item, split_holdout
from phototag.vision.weightsfile import read_metadata

from conftest import ROOT, SHARED, copy_photos, db_rows, needs_shared, run_phototag

SHIPPED = ROOT / "weights" / "phototag-cpu.safetensors"
UTKFACE = SHARED / "data" / "age" / "utkface_200"


def test_the_shipped_weights_are_listed_checked_half_precision_and_trained():
    """What any shipped file must be; what this one is (its backbones, zoom, history) is
    weights/README.md's and promote.py's to check, so that a retrain changes no test."""
    entry = weights.read_manifest()[SHIPPED.name]
    assert SHIPPED.stat().st_size == entry.size <= 30 * 2**20
    assert weights.sha256_of(SHIPPED) == entry.sha256
    config, info = read_metadata(SHIPPED)
    assert config.kind == "gated"  # the design's model, whatever its backbones
    assert info["epochs"] >= 1  # trained: an index run refuses a file that is not
    # How it was made is recorded whole (weights/scripts/promote.py refuses a candidate that is not).
    promote = load_promote()
    assert promote.record_problems(SHIPPED) == []
    with safe_open(str(SHIPPED), framework="pt") as f:
        dtypes = {str(f.get_slice(name).get_dtype()) for name in f.keys()}
    assert dtypes <= {"F16", "I64"}


def load_promote():
    import importlib.util

    spec = importlib.util.spec_from_file_location("promote", ROOT / "weights" / "scripts" / "promote.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def held_out_babies():
    """UTKFace faces of 0-2 years that training held out (`--holdout 0.1`)."""
    with open(UTKFACE / "labels.csv", newline="") as f:
        babies = [Item(str(UTKFACE / row["file"])) for row in csv.DictReader(f) if int(row["age_years"]) <= 2]
    return split_holdout(babies, 0.1)[1]


@needs_shared
@pytest.mark.skipif(not UTKFACE.is_dir(), reason="needs ../shared/data/age/utkface_200")
def test_index_tags_a_smiling_face_and_babies_with_no_flags(tmp_path):
    library = copy_photos(["people/ultralight__5.jpg"], tmp_path / "lib")
    babies = held_out_babies()
    for n, item in enumerate(babies):
        shutil.copy(item.path, library / f"baby-{n:03d}.jpg")
    result = run_phototag(tmp_path, "index", library)
    assert "tagging is off" not in result.stderr
    db = tmp_path / "db" / "index.db"
    largest = """SELECT f.emotion, f.age_group FROM faces f JOIN photos p ON p.id = f.photo_id
                 WHERE p.path LIKE ? ORDER BY (f.x2 - f.x1) * (f.y2 - f.y1) DESC LIMIT 1"""
    assert db_rows(db, largest, ("%ultralight__5.jpg",))[0][0] == "smile"
    ages = [db_rows(db, largest, (f"%baby-{n:03d}.jpg",)) for n in range(len(babies))]
    ages = [rows[0][1] for rows in ages if rows]
    assert len(ages) >= 0.9 * len(babies)
    # Measured: 108 of the 114 held-out babies tagged baby (chance: 1 in 6).
    assert ages.count("baby") >= 0.6 * len(ages), ages
    assert db_rows(db, largest, ("%baby-000.jpg",))[0][1] == "baby"
    found = run_phototag(tmp_path, "search", "--age", "baby", "--format", "paths").stdout.split()
    assert len(found) == ages.count("baby")
