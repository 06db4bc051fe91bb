"""The analysis pipeline: probe → sample → detect → crop → classify → aggregate → explain.

One implementation for the worker, the CLI, training tools and evaluation. It knows nothing of
HTTP, databases or queues and reads no environment variables: it takes a `PipelineConfig`, a
device and a checkpoint, loads the models once, and `run` analyses one file.

Errors: bad media raises `AnalysisError` (from probing or decoding); a missing or mismatched
checkpoint raises `CheckpointError` at construction. Finding no face is not an error here: the
result is inconclusive with the `no_face_found` reason (the worker records a succeeded job).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ml.aggregate import decide, score_tracks
from ml.classify import Classifier
from ml.config import PipelineConfig
from ml.contracts import (
    DEFAULT_CHECKPOINT,
    AnalysisResult,
    Artifact,
    ClassifierBatch,
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
from ml.explain import MAX_FRAME_WIDTH, FaceToExplain, load_gradcam, write_explanations
from ml.faces import Detection, FaceDetector, SequenceDetector
from ml.media import probe
from ml.model import CheckpointError, load_checkpoint
from ml.onnx_export import onnx_path
from ml.sampling import (
    MIN_FILLED_SHARE,
    DecodeAhead,
    DecodedFrame,
    SamplingPlan,
    VideoSamples,
    decode_image,
    iter_video,
    plan_video,
    without_b_frame_skip,
)
from ml.tracking import TrackedFace, TrackingParams, link_tracks

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
        # Lazy: with a cached ONNX export the torch module (and timm) is built only if Grad-CAM runs.
        self.model = load_checkpoint(path, self.device, lazy=True)
        self.classifier = Classifier(
            self.model, self.device, backend=self.config.backend, batch_size=self.config.batch_size,
            onnx_path=self.config.onnx_path or onnx_path(path),
        )
        self.detector = None if self.config.face_crops else FaceDetector(
            self.device, min_face_px=self.config.min_face_px, confidence=self.config.face_confidence,
            detect_width=self.config.detect_width,
        )
        logger.info("Pipeline ready: %s %s on %s (%s backend)", self.model.config.model_id,
                    self.model.config.version, self.device, self.classifier.backend)

    @property
    def tracking(self) -> TrackingParams:
        return TrackingParams(max_gap_seconds=self.config.track_max_gap_seconds,
                              cut_min_similarity=self.config.track_cut_similarity)

    @property
    def model_info(self) -> ModelInfo:
        return self.model.info

    @property
    def backend(self) -> str:
        return self.classifier.backend

    @property
    def sampling_plan(self) -> SamplingPlan:
        config = self.config
        return SamplingPlan(base_frames=config.frames, frames_per_minute=config.frames_per_minute,
                            max_frames=config.max_frames, burst_length=config.burst_length)

    def run(
        self,
        path: Path,
        *,
        progress: ProgressCallback | None = None,
        artifacts_dir: Path | None = None,
        decoded: tuple[MediaInfo, list[DecodedFrame]] | None = None,
    ) -> AnalysisResult:
        """Analyse one image or video. Artifacts (Grad-CAM PNGs) are written only with `artifacts_dir`.

        Video frames are decoded in a second thread while faces are found and scored in this one
        (`DecodeAhead`), so the stage seconds of sampling, detecting and classifying overlap; each
        is the time spent in that work, and `total` is the wall time.
        """
        config = self.config
        started = time.perf_counter()
        clock = _StageClock(progress)
        explain_k = config.explain_top_k if artifacts_dir is not None else 0
        if decoded is not None:  # `run_frames`: the frames are already decoded
            info, given = decoded
            clock.enter(Stage.sampling)
            collected = self._collect(iter(given), len(given), clock, explain_k)
        else:
            path = Path(path)
            with clock.stage(Stage.probing):
                info = probe(path, config.limits)
            clock.enter(Stage.sampling)
            if info.kind is MediaKind.image:
                begin = time.perf_counter()
                image = decode_image(path)
                clock.add(Stage.sampling, time.perf_counter() - begin)
                collected = self._collect(iter([image]), 1, clock, explain_k)
            else:
                samples = plan_video(path, self.sampling_plan, skip_b_frames=config.skip_b_frames)
                collected = self._collect_video(samples, clock, explain_k)
                if samples.skip_b_frames and len(collected.frames) < MIN_FILLED_SHARE * len(samples.times):
                    logger.info("Only %d of %d targets filled without B-frames; decoding them too.",
                                len(collected.frames), len(samples.times))
                    clock.reset_busy()
                    collected = self._collect_video(without_b_frame_skip(samples), clock, explain_k)
        frames = collected.frames
        with clock.stage(Stage.aggregating):
            track_ids = link_tracks(
                [TrackedFace(f.frame_index, f.seconds, f.detection.box, f.embedding) for f in collected.faces],
                self.tracking,
            )
            faces = [
                Face(frame_index=f.frame_index, timestamp_seconds=round(f.seconds, 4),
                     box=tuple(round(v, 2) for v in f.detection.box),  # type: ignore[arg-type]
                     detector_probability=round(f.detection.probability, 5), track_id=track, p_fake=f.p_fake,
                     p_synthetic=f.p_synthetic)
                for f, track in zip(collected.faces, track_ids, strict=True)
            ]
            tracks = score_tracks(faces, config.aggregation)
            points = self.model.config.points(info.kind, config.aggregation)
            decision = decide(
                faces, tracks, points=points, sampled_frames=len(frames),
                min_track_faces=config.min_track_faces, disagreement_std=config.disagreement_std,
            )
        artifacts: list[Artifact] = []
        notes = list(decision.notes)
        explain = bool(explain_k and collected.candidates)
        if explain:
            assert artifacts_dir is not None
            with clock.stage(Stage.explaining):
                ranked = collected.ranked()
                to_explain = [
                    FaceToExplain(rank=rank, crop=c.crop, frame=c.frame, box=c.box, track_id=faces[c.order].track_id,
                                  timestamp_seconds=faces[c.order].timestamp_seconds, p_fake=faces[c.order].p_fake)
                    for rank, c in enumerate(ranked, start=1)
                ]
                load_gradcam()  # a one-off import, kept out of the explanation budget
                if all(c.features is not None for c in ranked):
                    features = torch.stack([c.features for c in ranked])  # type: ignore[misc]
                else:
                    features = self.classifier.features([c.crop for c in ranked])  # builds the module once
                begin = time.perf_counter()
                artifacts, explain_notes = write_explanations(
                    self.classifier.module, to_explain, features, artifacts_dir,
                    budget_seconds=config.explain_budget_seconds, started=begin,
                )
                notes.extend(explain_notes)
        seconds = clock.seconds()
        seconds["total"] = round(time.perf_counter() - started, 4)
        if progress is not None:
            progress(Stage.explaining if explain else Stage.aggregating, 100.0)

        face_counts = np.bincount([f.frame_index for f in faces], minlength=len(frames)) if faces else None
        return AnalysisResult(
            media=info,
            frames=[SampledFrame(index=index, timestamp_seconds=round(stamp, 4),
                                 face_count=int(face_counts[index]) if face_counts is not None else 0)
                    for index, stamp in frames],
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
            classifier_batches=collected.batches,
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

    def _collect_video(self, samples: VideoSamples, clock: _StageClock, explain_k: int) -> _Collected:
        ahead = DecodeAhead(iter_video(samples, threads=self.config.decode_threads), depth=self.config.decode_ahead)
        try:
            return self._collect(iter(ahead), len(samples.times), clock, explain_k)
        finally:
            ahead.close()
            clock.add(Stage.sampling, ahead.busy_seconds)

    def _collect(self, frames: Iterator[DecodedFrame], expected: int, clock: _StageClock,
                 explain_k: int) -> _Collected:
        """Detect, crop and score faces frame by frame, keeping only what the explanations need.

        Frames are dropped once their faces are cropped; a downscaled copy is kept only while
        one of its faces may still be among the `explain_k` most suspicious.
        """
        config = self.config
        collected = _Collected(explain_k)
        for name in (Stage.sampling, Stage.detecting, Stage.classifying):
            clock.add(name, 0.0)
        stream: SequenceDetector[DecodedFrame] | None = None
        if self.detector is not None:
            stream = SequenceDetector(self.detector, full_every=config.detect_every)
        # Face-crop inputs are used whole, exactly as training feeds them; detected faces get
        # the margin the checkpoint was trained with.
        margin = 0.0 if config.face_crops else self.model.config.crop_margin
        keep_features = explain_k > 0 and self.classifier.backend == "torch"
        pending: list[tuple[_FoundFace, np.ndarray, _Thumbnail | None]] = []

        def score_pending() -> None:
            if not pending:
                return
            begin = time.perf_counter()
            scores = self.classifier.score([crop for _, crop, _ in pending], keep_features=keep_features)
            clock.add(Stage.classifying, time.perf_counter() - begin)
            collected.batches.extend(scores.batches)
            for i, (face, crop, thumbnail) in enumerate(pending):
                face.p_fake = float(scores.p_fake[i])
                if scores.p_synthetic is not None:
                    face.p_synthetic = float(scores.p_synthetic[i])
                face.embedding = scores.embeddings[i]
                collected.add(face, crop, thumbnail, scores.features[i] if scores.features is not None else None)
            pending.clear()

        def take(frame: DecodedFrame, detections: list[Detection]) -> None:
            detections = detections[: config.max_faces_per_frame]
            collected.frames.append((frame.index, frame.timestamp_seconds))
            thumbnail = _Thumbnail.of(frame.image) if explain_k and detections else None
            for detection in detections:
                face = _FoundFace(frame.index, frame.timestamp_seconds, detection)
                pending.append((face, crop_face(frame.image, detection.box, margin), thumbnail))
            if len(pending) >= config.batch_size:
                score_pending()

        seen = 0
        for frame in frames:
            if seen == 0:
                clock.enter(Stage.detecting)
            seen += 1
            begin = time.perf_counter()
            if stream is None:  # inputs are face crops: the whole image is the face
                height, width = frame.image.shape[:2]
                done = [(frame, [Detection((0.0, 0.0, float(width), float(height)), 1.0)])]
            else:
                done = stream.push(frame, frame.timestamp_seconds, frame.image)
            clock.add(Stage.detecting, time.perf_counter() - begin)
            for found_frame, detections in done:
                take(found_frame, detections)
            clock.progress(Stage.detecting, min(1.0, seen / max(expected, 1)))
        if stream is not None:
            begin = time.perf_counter()
            done = stream.finish()
            clock.add(Stage.detecting, time.perf_counter() - begin)
            for found_frame, detections in done:
                take(found_frame, detections)
        clock.enter(Stage.classifying)
        score_pending()
        collected.frames.sort()
        collected.faces.sort(key=lambda f: (f.frame_index, -f.detection.probability))
        for order, face in enumerate(collected.faces):
            face.order = order
        return collected


@dataclass(eq=False)
class _FoundFace:
    frame_index: int
    seconds: float
    detection: Detection
    p_fake: float = 0.0
    p_synthetic: float | None = None
    embedding: np.ndarray | None = None
    order: int = -1
    """Position in the result's face list (set once all faces are in)."""


@dataclass(frozen=True)
class _Thumbnail:
    """A frame downscaled to what its artifact shows (`MAX_FRAME_WIDTH`), and the scale used."""

    image: np.ndarray
    scale: float

    @classmethod
    def of(cls, frame: np.ndarray) -> _Thumbnail:
        scale = min(1.0, MAX_FRAME_WIDTH / frame.shape[1])
        if scale == 1.0:
            return cls(frame.copy(), 1.0)
        size = (round(frame.shape[1] * scale), round(frame.shape[0] * scale))
        return cls(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), scale)


@dataclass(eq=False)
class _Candidate:
    """A face that may be explained: its crop, frame copy and (torch backend) Grad-CAM features."""

    face: _FoundFace
    crop: np.ndarray
    thumbnail: _Thumbnail
    features: torch.Tensor | None

    @property
    def order(self) -> int:
        return self.face.order

    @property
    def frame(self) -> np.ndarray:
        return self.thumbnail.image

    @property
    def box(self) -> tuple[float, float, float, float]:
        scale = self.thumbnail.scale
        x1, y1, x2, y2 = self.face.detection.box
        return (x1 * scale, y1 * scale, x2 * scale, y2 * scale)


class _Collected:
    """Every face found (without pixels), and the pixels of only the `keep` most suspicious."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.frames: list[tuple[int, float]] = []
        self.faces: list[_FoundFace] = []
        self.candidates: list[_Candidate] = []
        self.batches: list[ClassifierBatch] = []
        """Every classifier batch run, in order (`Scores.batches`)."""
        self._arrival = 0

    def add(self, face: _FoundFace, crop: np.ndarray, thumbnail: _Thumbnail | None,
            features: torch.Tensor | None) -> None:
        self.faces.append(face)
        if not self.keep or thumbnail is None:
            return
        self.candidates.append(_Candidate(face, crop, thumbnail, features))
        if len(self.candidates) > self.keep:
            self.candidates = self.ranked()

    def ranked(self) -> list[_Candidate]:
        """The `keep` most suspicious, most first; ties to the earlier face, as in the face list."""
        return sorted(self.candidates, key=lambda c: (-c.face.p_fake, c.face.frame_index,
                                                      -c.face.detection.probability))[: self.keep]


class _StageClock:
    """Busy seconds per stage (stages overlap while frames stream) and progress in stage order."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self._progress = progress
        self._busy: dict[Stage, float] = {}
        self._current: Stage | None = None

    @contextmanager
    def stage(self, name: Stage) -> Iterator[None]:
        self.enter(name)
        begin = time.perf_counter()
        yield
        self.add(name, time.perf_counter() - begin)

    def enter(self, name: Stage) -> None:
        """Report `name` as started, unless a later stage already was (progress never goes back)."""
        order = list(Stage)
        if self._current is not None and order.index(name) <= order.index(self._current):
            return
        self._current = name
        if self._progress is not None:
            self._progress(name, STAGE_PERCENT[name][0])

    def progress(self, name: Stage, fraction: float) -> None:
        if self._progress is not None and self._current is name:
            low, high = STAGE_PERCENT[name]
            self._progress(name, low + (high - low) * fraction)

    def add(self, name: Stage, seconds: float) -> None:
        self._busy[name] = self._busy.get(name, 0.0) + seconds

    def reset_busy(self) -> None:
        for name in (Stage.sampling, Stage.detecting, Stage.classifying):
            self._busy.pop(name, None)

    def seconds(self) -> dict[str, float]:
        return {name.value: round(value, 4) for name, value in self._busy.items()}
