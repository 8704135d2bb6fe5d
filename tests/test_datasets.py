"""Reading labelled datasets in the layouts the trainer accepts."""

from PIL import Image

from phototag.labels import AGE_GROUPS, EMOTIONS
from phototag.vision.datasets import age_index, gather, read_dataset, split_holdout


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
