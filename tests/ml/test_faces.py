from __future__ import annotations

import cv2
import numpy as np
import pytest

from ml.faces import Detection, FaceDetector, box_iou


def test_real_face_photo_has_exactly_one_face(detector: FaceDetector, face_photo: np.ndarray) -> None:
    (detections,) = detector.detect([face_photo])
    assert len(detections) == 1
    (face,) = detections
    assert isinstance(face, Detection)
    assert face.probability >= 0.9
    x1, y1, x2, y2 = face.box
    # LFW photos are 250x250 with the face centred and about 100 px wide
    assert 60 < (x1 + x2) / 2 < 190
    assert 60 < (y1 + y2) / 2 < 190
    assert 60 < face.width < 160


def test_every_face_is_kept_not_only_the_largest(detector: FaceDetector, two_people_photo: np.ndarray) -> None:
    (detections,) = detector.detect([two_people_photo])
    assert len(detections) == 2
    assert detections[0].probability >= detections[1].probability


def test_boxes_are_mapped_back_from_the_downscaled_frame(face_photo: np.ndarray, detector: FaceDetector) -> None:
    big = cv2.resize(face_photo, (1000, 1000), interpolation=cv2.INTER_CUBIC)
    small_detector = FaceDetector("cpu", detect_width=250)
    (reference,) = detector.detect([face_photo])
    (mapped,) = small_detector.detect([big])
    assert len(mapped) == 1
    expected = tuple(float(v) * 4.0 for v in reference[0].box)
    assert box_iou(mapped[0].box, expected) > 0.85  # MTCNN's boxes jitter a few pixels between scales


def test_batches_of_mixed_sizes_keep_frame_order(detector: FaceDetector, face_photo: np.ndarray) -> None:
    blank = np.zeros((120, 200, 3), dtype=np.uint8)
    results = detector.detect([face_photo, blank, face_photo[:, ::-1].copy(), blank])
    assert [len(r) for r in results] == [1, 0, 1, 0]


def test_small_faces_and_low_confidence_are_filtered(face_photo: np.ndarray) -> None:
    assert FaceDetector("cpu", min_face_px=200).detect([face_photo]) == [[]]
    assert FaceDetector("cpu", confidence=1.01).detect([face_photo]) == [[]]


def test_rejects_non_rgb_frames(detector: FaceDetector) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect([np.zeros((10, 10), dtype=np.uint8)])


def test_box_iou() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
