"""Run the production pipeline on evaluation items once, store their face scores, replay decisions.

CPU time is scarce, so what the model says about a file is cached on disk, keyed by the
checkpoint's weights (`ml.model.weights_digest`: its tensors and the config that changes a score,
not its operating points, so a re-calibrated checkpoint reuses the scores), the file's SHA-256
(a frames folder: its frames' digests) and a digest of the pipeline settings that change faces
(frames, detector, crop); the aggregation is not among them, because aggregation and thresholds
are REPLAYED on the stored faces through `ml.aggregate.decide`, the very function `Pipeline.run`
calls. That is what lets calibration compare strategies and operating points without running the
model again, and it keeps one file-score rule in the code base.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from ml import aggregate
from ml.config import PipelineConfig
from ml.contracts import Aggregation, AnalysisError, ErrorCode, Face, MediaKind, OperatingPoint, Signal
from ml.evaluate.metrics import sharpness
from ml.evaluate.sets import EvalItem, frame_files, sha256_of
from ml.model import ModelConfig, file_sha256, read_checkpoint_config, weights_digest

logger = logging.getLogger(__name__)

SEQUENCE_FPS = 30.0
"""Frames folders carry no time; their frames are given timestamps at this rate (only reported)."""
FACE_SETTINGS = ("frames", "frames_per_minute", "max_frames", "burst_length", "skip_b_frames", "face_crops",
                 "detect_every", "detect_width", "min_face_px", "face_confidence", "max_faces_per_frame",
                 "track_max_gap_seconds", "track_cut_similarity", "limits")
"""The `PipelineConfig` fields that change which faces are found and how they score."""


class FileScores(BaseModel):
    """What the pipeline found in one item: its faces (with p_fake, p_synthetic, track) and baselines."""

    sha256: str
    path: str
    label: int
    source: str
    kind: MediaKind
    sampled_frames: int
    faces: list[Face]
    file_bytes: int
    sharpness: float | None
    error: str | None = None
    """The `AnalysisError` code when the pipeline refused the item (then `faces` is empty)."""


def settings_digest(config: PipelineConfig) -> str:
    """12 hex digits naming the face-changing settings: a cache made with others is never reused."""
    text = config.model_dump_json(include=set(FACE_SETTINGS))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Scorer:
    """Scores items with one checkpoint, through the pipeline, with an on-disk cache of results."""

    def __init__(self, checkpoint: Path, config: PipelineConfig, cache_dir: Path, device: str = "cpu") -> None:
        self.checkpoint = checkpoint
        self.config = config.model_copy(update={"explain_top_k": 0})
        self.device = device
        self.checkpoint_sha256 = file_sha256(checkpoint)
        self.weights_digest = weights_digest(checkpoint)
        self.model_config: ModelConfig = read_checkpoint_config(checkpoint)
        self.cache_dir = cache_dir
        self._pipelines: dict[bool, object] = {}
        self._caches: dict[bool, dict[str, dict]] = {}

    def _config(self, face_crops: bool) -> PipelineConfig:
        return self.config.model_copy(update={"face_crops": face_crops})

    def _cache_path(self, face_crops: bool) -> Path:
        return self.cache_dir / f"{self.weights_digest}-{settings_digest(self._config(face_crops))}.jsonl"

    def _cache(self, face_crops: bool) -> dict[str, dict]:
        if face_crops not in self._caches:
            path = self._cache_path(face_crops)
            entries: dict[str, dict] = {}
            if path.is_file():
                for line in path.read_text().splitlines():
                    if line.strip():
                        entry = json.loads(line)
                        entries[entry["sha256"]] = entry
            self._caches[face_crops] = entries
        return self._caches[face_crops]

    def pipeline(self, face_crops: bool):
        """The production pipeline, built on first use only (a warm cache needs no model at all)."""
        from ml.pipeline import Pipeline

        if face_crops not in self._pipelines:
            self._pipelines[face_crops] = Pipeline(self._config(face_crops), device=self.device,
                                                   checkpoint=self.checkpoint)
        return self._pipelines[face_crops]

    def score(self, items: Sequence[EvalItem], desc: str = "") -> list[FileScores]:
        from tqdm import tqdm

        out = []
        for item in tqdm(items, desc=desc, mininterval=10.0):
            sha = sha256_of(item.path)
            cache = self._cache(item.face_crops)
            entry = cache.get(sha)
            if entry is None:
                entry = self._run(item, sha)
                cache[sha] = entry
                path = self._cache_path(item.face_crops)
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a") as handle:
                    handle.write(json.dumps(entry) + "\n")
            out.append(FileScores(path=str(item.path), label=item.label, source=item.source, kind=item.kind,
                                  **entry))
        return out

    def _run(self, item: EvalItem, sha: str) -> dict:
        from ml.train.data import read_rgb

        pipeline = self.pipeline(item.face_crops)
        sharp: float | None = None
        file_bytes = 0
        try:
            if item.is_sequence:
                files = frame_files(item.path)
                frames = [read_rgb(f) for f in files]
                file_bytes = sum(f.stat().st_size for f in files)
                sharp = float(np.mean([sharpness(f) for f in frames]))
                result = pipeline.run_frames(frames, [i / SEQUENCE_FPS for i in range(len(frames))])
            else:
                file_bytes = item.path.stat().st_size
                if item.kind is MediaKind.image:
                    sharp = sharpness(item.path)
                result = pipeline.run(item.path)
        except (AnalysisError, OSError) as exc:  # read_rgb raises OSError on an undecodable frame
            logger.warning("%s: %s", item.path, exc)
            code = exc.code if isinstance(exc, AnalysisError) else ErrorCode.corrupt_media
            return {"sha256": sha, "sampled_frames": 0, "faces": [], "file_bytes": file_bytes,
                    "sharpness": sharp, "error": str(code)}
        return {"sha256": sha, "sampled_frames": len(result.frames),
                "faces": [face.model_dump() for face in result.faces], "file_bytes": file_bytes,
                "sharpness": sharp if sharp is None or math.isfinite(sharp) else None, "error": None}


def replay(
    record: FileScores, aggregation: Aggregation, *, points: Mapping[Signal, OperatingPoint], config: PipelineConfig,
) -> aggregate.Decision:
    """The production decision for stored faces: `ml.aggregate.score_tracks` then `ml.aggregate.decide`.

    Called through the module so that a test (or a future change) of `decide` is what evaluation
    measures: there is no second copy of the file-score rule.
    """
    tracks = aggregate.score_tracks(record.faces, aggregation)
    return aggregate.decide(record.faces, tracks, points=points, sampled_frames=record.sampled_frames,
                            min_track_faces=config.min_track_faces, disagreement_std=config.disagreement_std)


def write_scores(path: Path, records: Mapping[str, list[FileScores]], *, checkpoint_sha256: str,
                 model_config: ModelConfig, config: PipelineConfig, weights: str | None = None) -> None:
    """The run's face scores per set, as JSON: the input of `python -m ml.train.calibrate`. `weights`:
    the checkpoint's `weights_digest`, which every checkpoint these scores hold for shares."""
    payload = {
        "checkpoint_sha256": checkpoint_sha256,
        "weights_digest": weights,
        "model": {"model_id": model_config.model_id, "version": model_config.version},
        "pipeline_config": json.loads(config.model_dump_json()),
        "sets": {name: [r.model_dump(mode="json") for r in rows] for name, rows in records.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def read_scores(path: Path) -> tuple[dict, dict[str, list[FileScores]]]:
    """(header, records per set) from a `scores.json` written by `write_scores`."""
    payload = json.loads(Path(path).read_text())
    sets = {name: [FileScores.model_validate(r) for r in rows] for name, rows in payload.pop("sets").items()}
    return payload, sets
