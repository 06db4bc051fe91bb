"""Per-set figures from stored face scores, every decision replayed through `ml.aggregate.decide`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ml.config import PipelineConfig
from ml.contracts import Aggregation, Label, MediaKind, Signal
from ml.evaluate.metrics import baseline_auc, binary_metrics
from ml.evaluate.scoring import FileScores, replay
from ml.model import ModelConfig


def summarise(records: Sequence[FileScores], aggregation: Aggregation, *, model_config: ModelConfig,
              config: PipelineConfig) -> dict:
    """Every figure of one set under one aggregation, at the checkpoint's own operating points.

    Rates at the operating point are over ALL files (a file without a face is inconclusive: not a
    false alarm, not a catch); AUC, EER, TPR and ECE over the files that got a score.
    """
    kinds = {r.kind for r in records}
    kind = kinds.pop() if len(kinds) == 1 else MediaKind.video
    points = model_config.points(kind, aggregation)
    decisions = [replay(r, aggregation, points=model_config.points(r.kind, aggregation), config=config)
                 for r in records]
    labels = np.array([r.label for r in records])
    scored = np.array([d.score is not None for d in decisions])
    scores = np.array([d.score if d.score is not None else np.nan for d in decisions], dtype=float)
    point = points[Signal.face_manipulation]
    out: dict = {"kind": str(kind), "aggregation": str(aggregation), "files": len(records),
                 "real": int((labels == 0).sum()), "fake": int((labels == 1).sum()),
                 "no_face": int((~scored).sum()), "errors": sum(r.error is not None for r in records),
                 "threshold": point.threshold, "inconclusive_threshold": point.inconclusive_threshold,
                 "calibration_set": point.calibration_set}
    out.update(binary_metrics(labels[scored], scores[scored], point.threshold))
    verdicts = np.array([str(d.label) for d in decisions])
    for name, label in (("real", 0), ("fake", 1)):
        members = labels == label
        if members.any():
            share = {v: float(np.mean(verdicts[members] == v)) for v in Label}
            out[f"{name}_manipulated"] = share[Label.manipulated]
            out[f"{name}_inconclusive"] = share[Label.inconclusive]
    out["false_alarm_rate"] = out.get("real_manipulated")
    out["catch_rate"] = out.get("fake_manipulated")
    out["file_size_auc"] = baseline_auc(labels, [r.file_bytes for r in records])
    out["sharpness_auc"] = baseline_auc(labels, [r.sharpness if r.sharpness is not None else math.nan
                                                 for r in records])
    synthetic = [next((s.score for s in d.signals if s.signal is Signal.synthetic_face), None) for d in decisions]
    if any(s is not None for s in synthetic):
        known = np.array([s is not None for s in synthetic])
        values = np.array([s for s in synthetic if s is not None], dtype=float)
        if len(np.unique(labels[known])) == 2:
            out["synthetic_auc"] = binary_metrics(labels[known], values, 0.5)["auc"]
    return out


COLUMNS = (
    ("files", "files"), ("real", "real"), ("fake", "fake"), ("no face", "no_face"), ("AUC", "auc"),
    ("AUC 95% interval", "auc_interval"), ("EER", "eer"),
    ("TPR@1%FPR", "tpr_at_fpr_1pct"), ("TPR@5%FPR", "tpr_at_fpr_5pct"), ("false alarm", "false_alarm_rate"),
    ("real inconcl.", "real_inconclusive"), ("catch", "catch_rate"), ("fake inconcl.", "fake_inconclusive"),
    ("ECE", "ece"), ("size AUC", "file_size_auc"), ("sharpness AUC", "sharpness_auc"),
)


def fmt(value) -> str:
    if isinstance(value, tuple):
        return "–".join(fmt(v) for v in value) if all(math.isfinite(v) for v in value) else "n/a"
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def table(rows: Mapping[str, dict]) -> list[str]:
    """A markdown table, one row per (set, aggregation)."""
    header = ["set", "aggregation", *(name for name, _ in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for name, metrics in rows.items():
        lines.append(f"| {name} | {metrics['aggregation']} | "
                     + " | ".join(fmt(_value(metrics, key)) for _, key in COLUMNS) + " |")
    return lines


def _value(metrics: dict, key: str):
    if key == "auc_interval":
        return (metrics["auc_low"], metrics["auc_high"]) if "auc_low" in metrics else None
    return metrics.get(key)


def markdown(report: dict) -> str:
    model = report["model"]
    lines = [
        f"# Evaluation of {model['model_id']} {model['version']}",
        "",
        f"Checkpoint SHA-256 `{report['checkpoint_sha256']}`. Every file ran through the production pipeline "
        "(frames folders through `Pipeline.run_frames`); every decision is replayed through "
        "`ml.aggregate.decide` at the checkpoint's own operating points. "
        f"Limit per set: {report['limit'] or 'none'} (seed {report['seed']}); {report['frames']} frames per video.",
        "",
        "False alarm / catch = share of ALL real / fake files labelled *manipulated* (no face, too few faces or "
        "disagreeing scores make a file inconclusive). AUC 95% interval: stratified bootstrap (BCa, 2,000 "
        "resamples). size / sharpness AUC: trivial baselines, better direction.",
        "",
        *table(report["rows"]),
        "",
        "Operating points used:",
        "",
        *[f"- {name}: threshold {fmt(r['threshold'])}, inconclusive from {fmt(r['inconclusive_threshold'])} "
          f"({r['calibration_set']})" for name, r in report["rows"].items()],
        "",
    ]
    synthetic = {name: r["synthetic_auc"] for name, r in report["rows"].items() if "synthetic_auc" in r}
    if synthetic:
        lines += ["Synthetic-face signal AUC: " + ", ".join(f"{k} {fmt(v)}" for k, v in synthetic.items()), ""]
    return "\n".join(lines)
