"""The analysis pipeline: probe → sample → detect → crop → classify → aggregate → explain.

One implementation for the worker, the CLI, training tools and evaluation. It knows nothing of
HTTP, databases or queues and reads no environment variables: it takes a `PipelineConfig`, a
device and a checkpoint, loads the models once, and `run` analyses one file.

Errors: bad media raises `AnalysisError` (from probing or decoding); a missing or mismatched
checkpoint raises `CheckpointError` at construction. Finding no face is not an error here: the
result says `no_face_found` and the caller decides (the worker fails the job, keeping the result).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ml.aggregate import decide, score_tracks
from ml.classify import Classifier
from ml.config import PipelineConfig
from ml.contracts import (
    DEFAULT_CHECKPOINT,
    AnalysisResult,
    Artifact,
    Face,
    MediaInfo,
    MediaKind,
    ModelInfo,
    ProgressCallback,
    SampledFrame,
    Signal,
    Stage,
)
from ml.crop import crop_face
from ml.device import resolve_device
from ml.explain import FaceToExplain, write_explanations
from ml.faces import Detection, FaceDetector, link_tracks
from ml.media import probe
from ml.model import CheckpointError, load_checkpoint
from ml.sampling import DecodedFrame, sample_media

logger = logging.getLogger(__name__)

STAGE_PERCENT: dict[Stage, tuple[float, float]] = {
    Stage.probing: (0.0, 2.0),
    Stage.sampling: (2.0, 25.0),
    Stage.detecting: (25.0, 60.0),
    Stage.classifying: (60.0, 85.0),
    Stage.aggregating: (85.0, 87.0),
    Stage.explaining: (87.0, 100.0),
}
"""Overall percent at the start and end of each stage (roughly their share of CPU time)."""


class Pipeline:
    """Loads the detector and classifier once; `run` analyses one file at a time."""

    def __init__(
        self,
        config: PipelineConfig | None = None,
        device: str | torch.device | None = None,
        checkpoint: Path | None = None,
    ) -> None:
        self.config = config or PipelineConfig()
        self.device = resolve_device(device)
        path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        if not path.is_file():
            raise CheckpointError(
                f"No model checkpoint at {path}. The trained default ships as {DEFAULT_CHECKPOINT.name} in "
                "ml/weights/; pass another with checkpoint=... (CLI: --checkpoint PATH). "
                "DeepScreen never runs with random weights."
            )
        self.model = load_checkpoint(path, self.device)
        self.classifier = Classifier(
            self.model, self.device, backend=self.config.backend, batch_size=self.config.batch_size,
            onnx_cache_dir=self.config.onnx_cache_dir,
        )
        self.detector = None if self.config.face_crops else FaceDetector(
            self.device, min_face_px=self.config.min_face_px, confidence=self.config.face_confidence,
            detect_width=self.config.detect_width,
        )
        logger.info("Pipeline ready: %s %s on %s (%s backend)", self.model.config.model_id,
                    self.model.config.version, self.device, self.classifier.backend)

    @property
    def model_info(self) -> ModelInfo:
        return self.model.info

    @property
    def backend(self) -> str:
        return self.classifier.backend

    def run(
        self,
        path: Path,
        *,
        progress: ProgressCallback | None = None,
        artifacts_dir: Path | None = None,
        decoded: tuple[MediaInfo, list[DecodedFrame]] | None = None,
    ) -> AnalysisResult:
        """Analyse one image or video. Artifacts (Grad-CAM PNGs) are written only with `artifacts_dir`."""
        config = self.config
        seconds: dict[str, float] = {}
        started = time.perf_counter()

        @contextmanager
        def stage(name: Stage) -> Iterator[None]:
            if progress is not None:
                progress(name, STAGE_PERCENT[name][0])
            begin = time.perf_counter()
            yield
            seconds[name.value] = round(time.perf_counter() - begin, 4)

        if decoded is not None:  # `run_frames`: the frames are already decoded
            info, frames = decoded
        else:
            path = Path(path)
            with stage(Stage.probing):
                info = probe(path, config.limits)
            with stage(Stage.sampling):
                frames = sample_media(path, info, config.frames, skip_b_frames=config.skip_b_frames,
                                      threads=config.decode_threads)
        with stage(Stage.detecting):
            per_frame = self._detect(frames)
            track_ids = link_tracks(per_frame, min_iou=config.track_iou, max_gap=config.track_max_gap)
            located = [(frame, detection, track)
                       for frame, detections, tracks in zip(frames, per_frame, track_ids, strict=True)
                       for detection, track in zip(detections, tracks, strict=True)]
            # Face-crop inputs are used whole, exactly as training feeds them; detected faces get
            # the margin the checkpoint was trained with.
            margin = 0.0 if config.face_crops else self.model.config.crop_margin
            crops = [crop_face(frame.image, detection.box, margin) for frame, detection, _ in located]
        explain = artifacts_dir is not None and config.explain_top_k > 0 and bool(crops)
        with stage(Stage.classifying):
            keep = explain and self.classifier.backend == "torch"
            scores = self.classifier.score(crops, keep_features=keep)
        with stage(Stage.aggregating):
            faces = [
                Face(frame_index=frame.index, timestamp_seconds=round(frame.timestamp_seconds, 4),
                     box=tuple(round(v, 2) for v in detection.box),  # type: ignore[arg-type]
                     detector_probability=round(detection.probability, 5), track_id=track,
                     p_fake=float(p), p_synthetic=None if scores.p_synthetic is None else float(scores.p_synthetic[i]))
                for i, ((frame, detection, track), p) in enumerate(zip(located, scores.p_fake, strict=True))
            ]
            tracks = score_tracks(faces, config.aggregation)
            points = self.model.config.points(info.kind, config.aggregation)
            decision = decide(
                faces, tracks, points=points, sampled_frames=len(frames),
                min_track_faces=config.min_track_faces, disagreement_std=config.disagreement_std,
            )
        artifacts: list[Artifact] = []
        notes = list(decision.notes)
        if explain:
            assert artifacts_dir is not None
            with stage(Stage.explaining):
                ranked = sorted(range(len(faces)), key=lambda i: -faces[i].p_fake)[: config.explain_top_k]
                to_explain = [
                    FaceToExplain(rank=rank, crop=crops[i], frame=located[i][0].image, box=located[i][1].box,
                                  track_id=faces[i].track_id, timestamp_seconds=faces[i].timestamp_seconds,
                                  p_fake=faces[i].p_fake)
                    for rank, i in enumerate(ranked, start=1)
                ]
                begin = time.perf_counter()
                if scores.features is not None:
                    features = scores.features[ranked]
                else:
                    features = self.classifier.features([crops[i] for i in ranked])
                artifacts, explain_notes = write_explanations(
                    self.classifier.module, to_explain, features, artifacts_dir,
                    budget_seconds=config.explain_budget_seconds, started=begin,
                )
                notes.extend(explain_notes)
        seconds["total"] = round(time.perf_counter() - started, 4)
        if progress is not None:
            progress(Stage.explaining if explain else Stage.aggregating, 100.0)

        face_counts = np.bincount([f.frame_index for f in faces], minlength=len(frames)) if faces else None
        return AnalysisResult(
            media=info,
            frames=[SampledFrame(index=frame.index, timestamp_seconds=round(frame.timestamp_seconds, 4),
                                 face_count=int(face_counts[frame.index]) if face_counts is not None else 0)
                    for frame in frames],
            faces=faces,
            tracks=tracks,
            score=decision.score,
            label=decision.label,
            predicted_manipulation=decision.predicted_manipulation,
            low_confidence=decision.low_confidence,
            low_confidence_reasons=decision.low_confidence_reasons,
            decision=points[Signal.face_manipulation],
            signals=decision.signals,
            aggregation=config.aggregation,
            model=self.model_info,
            device=str(self.device),
            stage_seconds=seconds,
            artifacts=artifacts,
            notes=notes,
        )

    def run_frames(self, frames: Sequence[np.ndarray], timestamps: Sequence[float], *,
                   progress: ProgressCallback | None = None, artifacts_dir: Path | None = None) -> AnalysisResult:
        """Analyse a sequence of decoded RGB frames as one video (e.g. a data set's frames folder).

        The same detect → crop → classify → tracks → decide as `run`; with more frames than
        `config.frames`, the centres of `config.frames` equal segments are taken, as a video is sampled.
        """
        if not frames or len(frames) != len(timestamps):
            raise ValueError("run_frames needs one timestamp per frame and at least one frame.")
        count = min(len(frames), self.config.frames)
        chosen = [int((i + 0.5) * len(frames) / count) for i in range(count)]
        height, width = frames[0].shape[:2]
        duration = float(timestamps[-1] - timestamps[0]) if len(frames) > 1 else None
        info = MediaInfo(kind=MediaKind.video, format="frames", width=width, height=height,
                         duration_seconds=duration, frame_count=len(frames))
        decoded = [DecodedFrame(i, float(timestamps[j]), frames[j]) for i, j in enumerate(chosen)]
        return self.run(Path(), progress=progress, artifacts_dir=artifacts_dir, decoded=(info, decoded))

    def _detect(self, frames: list[DecodedFrame]) -> list[list[Detection]]:
        """Faces per frame, most probable first, at most `max_faces_per_frame` each."""
        if self.detector is None:  # inputs are face crops: the whole image is the face
            return [[Detection((0.0, 0.0, float(f.image.shape[1]), float(f.image.shape[0])), 1.0)] for f in frames]
        per_frame = self.detector.detect_sequence([f.image for f in frames], full_every=self.config.detect_every)
        return [detections[: self.config.max_faces_per_frame] for detections in per_frame]
