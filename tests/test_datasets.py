"""Reading labelled datasets in the layouts the trainer accepts."""

from pathlib import Path

import numpy as np
from PIL import Image

from phototag.labels import AGE_GROUPS, EMOTIONS
from phototag.train.crops import CropGeometry, build_crops
from phototag.train.datasets import Item, age_groups, age_index, gather, read_dataset, split_holdout
from phototag.vision.detect import Faces


def image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 20)).save(path)


def test_caer_s_annotation_layout(tmp_path):
    for name in ("train/Happy/0001.png", "train/Disgust/0002.png", "train/Fear/0003.png"):
        image(tmp_path / name)
    (tmp_path / "train.txt").write_text(
        "train/Happy/0001.png,3,1,2,11,12\ntrain/Disgust/0002.png,1,0,0,5,5\ntrain/Fear/0003.png,2,3,3,9,9\n"
    )
    items, report = read_dataset(tmp_path / "train.txt", "emotion")
    assert [(EMOTIONS[i.emotion], i.box) for i in items] == [
        ("smile", (1.0, 2.0, 11.0, 12.0)), ("anxiety", (3.0, 3.0, 9.0, 9.0))]
    assert items[0].path == str(tmp_path / "train/Happy/0001.png")
    assert report.left_out == {"no class for disgust": 1}


def test_manifest_with_a_header_and_image_folders(tmp_path):
    image(tmp_path / "train/happiness/a.jpg")
    image(tmp_path / "train/contempt/b.jpg")
    (tmp_path / "labels.csv").write_text(
        "file,label,group\ntrain/happiness/a.jpg,happiness,x\ntrain/contempt/b.jpg,contempt,y\n")
    items, _ = read_dataset(tmp_path / "labels.csv", "emotion")
    assert [EMOTIONS[i.emotion] for i in items] == ["smile"]
    items, report = read_dataset(tmp_path / "train", "emotion")
    assert [EMOTIONS[i.emotion] for i in items] == ["smile"] and report.left_out == {"no class for contempt": 1}


def test_utkface_names_and_age_labels(tmp_path):
    for name in ("1_0_0_2017.jpg.chip.jpg", "35_1_2_2017.jpg.chip.jpg", "75_0_1_2017.jpg", "notes.jpg"):
        image(tmp_path / "utk" / name)
    items, report = read_dataset(tmp_path / "utk", "age")
    assert sorted(AGE_GROUPS[i.age] for i in items) == ["baby", "senior", "thirty-forty"]
    assert report.left_out == {"no label in the file name": 1}
    assert [age_index(v) for v in ("0-2", "3-7", "8-12", "66+", "child", "45")] == [0, 1, None, 5, 1, 3]


def test_both_tasks_from_task_prefixed_specs_and_a_stable_holdout(tmp_path):
    image(tmp_path / "fer/happy/a.png")
    image(tmp_path / "utk/30_0_0_1.jpg")
    items, _ = gather([f"emotion:{tmp_path / 'fer'}", f"age:{tmp_path / 'utk'}"], "both")
    assert [(i.emotion, i.age) for i in items] == [(EMOTIONS.index("smile"), -1), (-1, AGE_GROUPS.index("thirty-forty"))]
    items, _ = gather([f"emotion:{tmp_path / 'fer'}", f"age:{tmp_path / 'utk'}"], "age")
    assert len(items) == 1
    many = [type(items[0])(f"/x/{n}.jpg") for n in range(1000)]
    kept, held = split_holdout(many, 0.1)
    assert 60 < len(held) < 140 and len(kept) + len(held) == 1000
    assert split_holdout(many, 0.1) == (kept, held)


def test_a_subset_is_the_same_wherever_the_dataset_is_kept(tmp_path):
    for n in range(30):
        image(tmp_path / f"here/fer/happy/{n}.png")
        image(tmp_path / f"elsewhere/deeper/fer/happy/{n}.png")

    def subset(root):
        items, _ = gather([f"emotion:{root}"], "emotion", limit=5)
        return sorted(Path(i.path).relative_to(root).as_posix() for i in items)

    assert subset(tmp_path / "here/fer") == subset(tmp_path / "elsewhere/deeper/fer")
    assert len(subset(tmp_path / "here/fer")) == 5


def test_a_small_set_still_holds_out_one_image():
    few = [Item(f"/x/{n}.jpg") for n in range(4)]
    kept, held = split_holdout(few, 0.01)
    assert len(held) == 1 and len(kept) == 3
    assert split_holdout(few, 0.0) == (few, [])


def test_an_age_range_over_a_bin_edge_keeps_both_groups(tmp_path):
    assert age_groups("8-12") == (AGE_GROUPS.index("child"), AGE_GROUPS.index("ten-twenty"))
    assert age_groups("66+") == (AGE_GROUPS.index("senior"),) and age_groups("old") == ()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        image(tmp_path / name)
    (tmp_path / "labels.csv").write_text("file,age_range,gender\na.jpg,0-2,m\nb.jpg,8-12,f\nc.jpg,?,f\n")
    items, report = read_dataset(tmp_path / "labels.csv", "age")
    assert [(i.age, i.age_mask) for i in items] == [(0, 0b1), (-1, 0b110)]
    assert report.ranges == 1 and report.left_out == {"age '?' unreadable": 1}


def test_identical_images_under_different_names_are_held_out_together(tmp_path):
    items = []
    for n in range(200):
        Image.new("RGB", (8, 8), (n, 0, 0)).save(tmp_path / f"{n}.png")
        (tmp_path / f"{n}-copy.png").write_bytes((tmp_path / f"{n}.png").read_bytes())
        items += [Item(str(tmp_path / f"{n}.png")), Item(str(tmp_path / f"{n}-copy.png"))]
    kept, held = split_holdout(items, 0.2)
    held_names = {Path(i.path).name for i in held}
    assert 40 < len(held) < 120
    assert all(name.replace("-copy", "") in held_names and
               (name if "-copy" in name else name.replace(".png", "-copy.png")) in held_names
               for name in held_names)


class CountingDetector:
    """Stands in for RetinaFace where only the store's bookkeeping is under test."""
    name = "counting"

    def __init__(self):
        self.seen = 0

    def detect(self, images, min_score=0.5):
        self.seen += len(images)
        return [Faces(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))) for _ in images]


GEOMETRY = CropGeometry(face_size=32, context_size=32, context_scale=0.0, margin=4)


def coloured(path, colour, size=(20, 20)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_faces_are_located_and_cut_once_per_content(tmp_path):
    items = []
    for n in range(6):
        coloured(tmp_path / "data" / f"{n}.png", (40 * n, 0, 0))
        items.append(Item(str(tmp_path / "data" / f"{n}.png")))
    detector = CountingDetector()
    first, unreadable = build_crops(items[:3], detector, tmp_path / "cache", GEOMETRY)
    assert detector.seen == 3 and unreadable == 0 and len(first) == 3
    every, _ = build_crops(items, detector, tmp_path / "cache", GEOMETRY)
    assert detector.seen == 6 and not every.found[every.rows].any()  # tight crops: whole image
    assert np.array_equal(every.gather([0, 1, 2])[0], first.gather([0, 1, 2])[0])
    # A face's crop is its image: colour n in the middle of face n's canvas.
    middle = every.gather(range(6))[0][:, 20, 20, 0]
    assert np.abs(middle.astype(int) - [40 * n for n in range(6)]).max() <= 1
    # The same bytes under another name, in another folder: nothing detected or cut again.
    (tmp_path / "moved").mkdir()
    (tmp_path / "moved" / "a.png").write_bytes(Path(items[4].path).read_bytes())
    build_crops([Item(str(tmp_path / "moved" / "a.png"))], detector, tmp_path / "cache", GEOMETRY)
    assert detector.seen == 6
    # Another crop size cuts again but does not detect again.
    build_crops(items, detector, tmp_path / "cache", CropGeometry(48, 32, 0.0, 6))
    assert detector.seen == 6
    coloured(Path(items[0].path), (0, 255, 0), size=(30, 20))  # changed: located again
    build_crops(items, detector, tmp_path / "cache", GEOMETRY)
    assert detector.seen == 7


def test_a_stopped_build_resumes_and_drops_pixels_written_after_its_last_commit(tmp_path):
    items = []
    for n in range(4):
        coloured(tmp_path / f"{n}.png", (0, 50 * n, 0))
        items.append(Item(str(tmp_path / f"{n}.png")))
    detector = CountingDetector()
    build_crops(items[:2], detector, tmp_path / "cache", GEOMETRY)
    face_file = next((tmp_path / "cache").glob("crops-*.face"))
    with open(face_file, "ab") as f:
        f.write(b"\x07" * 1000)  # a write that never got committed
    crops, _ = build_crops(items, detector, tmp_path / "cache", GEOMETRY)
    assert detector.seen == 4 and len(crops) == 4
    assert face_file.stat().st_size == 4 * GEOMETRY.canvas ** 2 * 3
    middle = crops.gather(range(4))[0][:, 20, 20, 1]
    assert np.abs(middle.astype(int) - [0, 50, 100, 150]).max() <= 1


def test_an_unreadable_image_is_left_out_and_counted(tmp_path):
    coloured(tmp_path / "good.png", (9, 9, 9))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    items = [Item(str(tmp_path / "good.png")), Item(str(tmp_path / "bad.png")),
             Item(str(tmp_path / "missing.png"))]
    crops, unreadable = build_crops(items, CountingDetector(), tmp_path / "cache", GEOMETRY)
    assert [Path(i.path).name for i in crops.items] == ["good.png"] and unreadable == 2
