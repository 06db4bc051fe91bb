from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.config import PipelineConfig
from ml.contracts import DEFAULT_CHECKPOINT
from ml.tracking import TrackedFace, TrackingParams, centre_shift, link_tracks, scale_change
from tests.ml.factories import write_video


def _unit(seed: int, dim: int = 16) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=dim)
    return vector / np.linalg.norm(vector)


def test_a_missed_stretch_of_two_seconds_keeps_one_track() -> None:
    # issue 16, dfdc_abofeumbvv: the face missed from 3.9 to 5.1 s, then found again in the same place
    before = [TrackedFace(i, 0.13 + 0.4 * i, (899, 167, 1003, 302)) for i in range(9)]
    after = [TrackedFace(9 + i, 5.44 + 0.4 * i, (901, 169, 998, 296)) for i in range(8)]
    assert set(link_tracks(before + after)) == {0}


def test_two_faces_in_one_frame_are_never_one_track() -> None:
    faces = [TrackedFace(i, float(i), box) for i in range(5) for box in ((100, 100, 200, 200), (150, 100, 250, 200))]
    ids = link_tracks(faces)
    for i in range(5):
        assert ids[2 * i] != ids[2 * i + 1]
    assert len(set(ids)) == 2


def test_a_face_far_away_is_another_person_unless_it_looks_the_same_right_after_a_cut() -> None:
    same, other = _unit(1), _unit(2)
    left = [TrackedFace(i, 0.5 * i, (100, 100, 200, 200), same) for i in range(4)]
    zoomed = [TrackedFace(4 + i, 2.0 + 0.5 * i, (300, 50, 500, 250), same) for i in range(4)]
    stranger = [TrackedFace(4 + i, 2.0 + 0.5 * i, (300, 50, 500, 250), other) for i in range(4)]
    assert set(link_tracks(left + zoomed)) == {0}  # a cut to a closer shot of the same person
    assert link_tracks(left + stranger) == [0] * 4 + [1] * 4
    late = [TrackedFace(4 + i, 9.0 + 0.5 * i, f.box, same) for i, f in enumerate(zoomed)]
    assert link_tracks(left + late) == [0] * 4 + [1] * 4  # too long after for appearance alone


def test_gaps_are_measured_in_seconds() -> None:
    face = (100.0, 100.0, 200.0, 200.0)
    moved = (130.0, 100.0, 230.0, 200.0)  # 0.3 face sizes
    assert link_tracks([TrackedFace(0, 0.0, face), TrackedFace(1, 1.5, moved)]) == [0, 0]
    params = TrackingParams(max_gap_seconds=1.0, relink_min_similarity=0.99)
    # beyond the online gap the re-link pass still joins them by position (no appearance known)
    assert link_tracks([TrackedFace(0, 0.0, face), TrackedFace(1, 30.0, moved)], params) == [0, 0]
    # but not when they look different
    faces = [TrackedFace(0, 0.0, face, _unit(1)), TrackedFace(1, 30.0, moved, _unit(2))]
    assert link_tracks(faces, params) == [0, 1]


def test_geometry_helpers() -> None:
    assert centre_shift((0, 0, 10, 10), (10, 0, 20, 10)) == pytest.approx(1.0)
    assert scale_change((0, 0, 10, 10), (0, 0, 20, 20)) == pytest.approx(2.0)


# --- end to end on real media, with the shipped model's features --------------------------------



@pytest.fixture(scope="module")
def pipeline():
    if not DEFAULT_CHECKPOINT.is_file():
        pytest.skip("the shipped checkpoint is missing")
    from ml.pipeline import Pipeline

    return Pipeline(PipelineConfig(frames=16, backend="torch"), device="cpu")


def _stage(width: int = 640, height: int = 360) -> np.ndarray:
    return np.full((height, width, 3), 110, dtype=np.uint8)


def _paste(frame: np.ndarray, face: np.ndarray, left: int, top: int, side: int) -> None:
    frame[top : top + side, left : left + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)


def test_two_people_give_two_tracks_that_never_swap(pipeline, face_photo: np.ndarray, second_face_photo: np.ndarray,
                                                     tmp_path: Path) -> None:
    """Two people drifting towards each other; the left one leaves for 3 s and comes back."""
    frames = []
    for i in range(80):  # 8 s at 10 fps
        frame = _stage()
        if not 30 <= i < 60:
            _paste(frame, face_photo, 20 + i, 60, 200)
        _paste(frame, second_face_photo, 420 - i, 80, 200)
        frames.append(frame)
    clip = write_video(tmp_path / "two.mp4", frames, fps=10)
    result = pipeline.run(clip)
    assert len(result.tracks) == 2, [(t.track_id, t.face_count, t.first_seconds, t.last_seconds)
                                     for t in result.tracks]
    left_tracks = {f.track_id for f in result.faces if (f.box[0] + f.box[2]) / 2 < 320}
    right_tracks = {f.track_id for f in result.faces if (f.box[0] + f.box[2]) / 2 >= 320}
    assert len(left_tracks) == len(right_tracks) == 1
    assert left_tracks != right_tracks
    left = next(t for t in result.tracks if t.track_id in left_tracks)
    assert left.first_seconds < 3.0 < 6.0 < left.last_seconds  # one track across the 3 s absence


@pytest.mark.parametrize("same_person", [True, False])
def test_a_cut_to_a_closer_shot_stays_one_track(pipeline, face_photo: np.ndarray, second_face_photo: np.ndarray,
                                                same_person: bool, tmp_path: Path) -> None:
    frames = []
    for i in range(80):
        frame = _stage(640, 480)
        if i < 40:
            _paste(frame, face_photo, 40, 120, 200)  # wide shot on the left
        else:  # cut: twice the size, further right
            _paste(frame, face_photo if same_person else second_face_photo, 220, 20, 400)
        frames.append(frame)
    result = pipeline.run(write_video(tmp_path / "cut.mp4", frames, fps=10))
    assert len(result.faces) >= 12
    assert len(result.tracks) == (1 if same_person else 2)


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["fake/celebdf_id0_id1_0000", "fake/dfdc_abofeumbvv", "fake/dfdc_abqwwspghj",
                                  "fake/ffpp_deepfakes_003_000", "real/celebdf_id0_0000"])
def test_each_shared_clip_is_one_person(shared_data: Path, clip: str) -> None:
    if not DEFAULT_CHECKPOINT.is_file():
        pytest.skip("the shipped checkpoint is missing")
    from ml.pipeline import Pipeline

    result = Pipeline(PipelineConfig(frames=32), device="cpu").run(shared_data / "videos" / f"{clip}.mp4")
    assert len(result.faces) >= 16
    assert len(result.tracks) == 1, [(t.track_id, t.face_count, t.first_seconds, t.last_seconds)
                                     for t in result.tracks]
