"""Temperature scaling, the single-frame threshold, and the calibrated operating points.

`python -m ml.train.calibrate --scores runs/eval/scores.json --checkpoint CKPT --out-checkpoint NEW
--report runs/calibration` fits the three-outcome operating points (bottom of this module) from
the face scores `python -m ml.evaluate` stored, per signal, media kind and aggregation, with
leave-one-source-out figures, and writes them into a NEW checkpoint's metadata.

Single frames (training's validation split):

Temperature scaling (Guo et al., 2017) divides logits by one scalar T fitted by minimising the
validation log loss: it changes probabilities, not the ranking (AUC is unchanged). The threshold
is then chosen on the calibrated validation probabilities at the maximum balanced accuracy
(Youden's J = TPR - FPR), which weighs a missed fake and a false alarm equally whatever the class
balance of the validation set, and (given each sample's data set) every data set equally.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.metrics import roc_curve

from ml.contracts import Aggregation, MediaKind, OperatingPoint, Signal

if TYPE_CHECKING:
    from ml.evaluate.scoring import FileScores


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, max_iter: int = 200) -> float:
    """The T > 0 minimising the log loss of sigmoid(logits / T) against `labels` (0/1)."""
    x = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.float64)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x / log_t.exp(), y)
        loss.backward()
        return loss

    optimiser.step(closure)
    return float(log_t.detach().exp())


def balanced_accuracy_threshold(
    probabilities: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None
) -> float:
    """Probability threshold (predict fake when p >= threshold) maximising TPR - FPR.

    With `groups` (the data set of each sample) every (group, label) cell weighs the same, so the
    threshold maximises the mean of the per-set balanced accuracies: a large set cannot pick a
    threshold that only suits itself (with DFDC 5x larger than LFW it flagged 17 % of LFW reals).
    """
    weights = None
    if groups is not None:
        cells = np.char.add(np.asarray(groups).astype(str), labels.astype(int).astype(str))
        _, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
        weights = 1.0 / counts[inverse]
    fpr, tpr, thresholds = roc_curve(labels, probabilities, sample_weight=weights)
    finite = np.isfinite(thresholds)
    best = int(np.argmax(np.where(finite, tpr - fpr, -np.inf)))
    return float(np.clip(thresholds[best], 1e-6, 1 - 1e-6))


# --- operating points: thresholds with a stated false-alarm rate, checked on unseen sources -----

MANIPULATED_FALSE_ALARM = 0.05
"""Largest share of real media of any fitting source that the "manipulated" threshold may flag."""
INCONCLUSIVE_FALSE_ALARM = 0.15
"""The inconclusive band starts where 15 % of real media would be flagged: below it, "no signs found"
is said of 85 % of real media or more; between the two, the tool says it cannot tell."""
MIN_FIT_REALS = 20
"""A source with fewer real items is only measured, never fitted on (one real clip is no quantile)."""
EVAL_ONLY_SOURCES = frozenset({"clips"})
"""The data protocol: the shared clips are for evaluation only, never fitted on."""
NEVER = math.nextafter(1.0, 2.0)
"""A threshold no probability reaches: the synthetic-face signal on video (`synthetic_video_points`)."""


@dataclass(frozen=True)
class SourceScores:
    """File scores of one source under one (signal, media kind, aggregation); None: no face."""

    source: str
    real: np.ndarray
    fake: np.ndarray


def threshold_for_rate(reals: np.ndarray, rate: float) -> float:
    """The lowest threshold flagging (score >= threshold) at most `rate` of `reals`."""
    ordered = np.sort(np.asarray(reals, dtype=float))[::-1]
    allowed = int(np.floor(rate * len(ordered) + 1e-9))
    return float(np.nextafter(ordered[allowed], np.inf)) if allowed < len(ordered) else float(ordered[-1])


def fit_thresholds(sources: list[SourceScores]) -> tuple[float, float]:
    """(manipulated, inconclusive) thresholds: each meets its false-alarm rate on EVERY fitting source.

    The maximum of the per-source thresholds rather than a pooled quantile: a large source cannot
    set a threshold that only suits itself, and a threshold that holds on every source seen has a
    better chance on the next one (the leave-one-source-out figures measure exactly that).
    """
    if not sources:
        raise ValueError("No source to fit on.")
    manipulated = max(threshold_for_rate(s.real, MANIPULATED_FALSE_ALARM) for s in sources)
    inconclusive = max(threshold_for_rate(s.real, INCONCLUSIVE_FALSE_ALARM) for s in sources)
    return manipulated, min(inconclusive, manipulated)


def rates(source: SourceScores, threshold: float, inconclusive: float | None = None) -> dict[str, float | int | None]:
    """False-alarm and catch rate of one source at `threshold`, and with `inconclusive` the share of
    its reals in the band below it (the real media the tool says it cannot tell)."""
    out: dict[str, float | int | None] = {
        "real": len(source.real), "fake": len(source.fake),
        "false_alarm_rate": float(np.mean(source.real >= threshold)) if len(source.real) else None,
        "catch_rate": float(np.mean(source.fake >= threshold)) if len(source.fake) else None,
    }
    if inconclusive is not None and len(source.real):
        out["real_inconclusive_rate"] = float(np.mean((source.real >= inconclusive) & (source.real < threshold)))
    return out


def leave_one_source_out(sources: list[SourceScores]) -> dict[str, dict]:
    """Per source: the thresholds fitted on the OTHER fittable sources and the rates they give here."""
    fittable = [s for s in sources if _fittable(s)]
    out = {}
    for held_out in sources:
        others = [s for s in fittable if s.source != held_out.source]
        if not others:
            continue
        manipulated, inconclusive = fit_thresholds(others)
        out[held_out.source] = {"fitted_on": [s.source for s in others], "threshold": manipulated,
                                "inconclusive_threshold": inconclusive,
                                **rates(held_out, manipulated, inconclusive)}
    return out


def _fittable(source: SourceScores) -> bool:
    return source.source not in EVAL_ONLY_SOURCES and len(source.real) >= MIN_FIT_REALS


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def calibrate_point(sources: list[SourceScores], *, signal, kind, aggregation) -> tuple[OperatingPoint, dict]:
    """The operating point fitted on every fittable source, with its leave-one-source-out figures.

    The point's `false_alarm_rate` and `catch_rate` are the means over held-out sources (each
    source counts once) of the rates at thresholds fitted without that source.
    """
    fittable = [s for s in sources if _fittable(s)]
    manipulated, inconclusive = fit_thresholds(fittable)
    loso = leave_one_source_out(sources)
    held_out_fpr = _mean([r["false_alarm_rate"] for name, r in loso.items() if name not in EVAL_ONLY_SOURCES])
    held_out_catch = _mean([r["catch_rate"] for name, r in loso.items() if name not in EVAL_ONLY_SOURCES])
    held_out_inconclusive = _mean([r.get("real_inconclusive_rate") for name, r in loso.items()
                                   if name not in EVAL_ONLY_SOURCES])
    per_source = ", ".join(
        f"{name} {_pct(r['false_alarm_rate'])} FPR / {_pct(r['catch_rate'])} caught" for name, r in loso.items()
    )
    point = OperatingPoint(
        signal=signal, media_kind=kind, aggregation=aggregation, threshold=manipulated,
        inconclusive_threshold=inconclusive, target_false_alarm_rate=MANIPULATED_FALSE_ALARM,
        false_alarm_rate=held_out_fpr, catch_rate=held_out_catch,
        calibration_set=f"fitted on {', '.join(s.source for s in fittable)} (each source's reals flagged <= "
        f"{MANIPULATED_FALSE_ALARM:.0%}; inconclusive band from {INCONCLUSIVE_FALSE_ALARM:.0%}); "
        f"leave-one-source-out: {per_source}",
    )
    final = {s.source: rates(s, manipulated, inconclusive) for s in sources}
    return point, {"loso": loso, "fitted_on_all": final, "held_out_false_alarm_rate": held_out_fpr,
                   "held_out_catch_rate": held_out_catch, "held_out_real_inconclusive_rate": held_out_inconclusive}


def _threshold(value: float) -> str:
    return "never" if value >= NEVER else f"{value:.4f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


# --- the command: stored scores in, operating points and a calibrated checkpoint out ------------

PHOTO_FAKE_SOURCES_OF = {
    Signal.face_manipulation: frozenset({"dfdc", "lfw", "ffpp"}), Signal.synthetic_face: frozenset({"ffhq_sg2"}),
}
"""Whose fakes count as positives of each signal on photos: a StyleGAN face is not a manipulated real
face. Every video fake is a face manipulation (no video holds a generated face)."""


def counts_as_fake(source: str, signal: Signal, kind: MediaKind) -> bool:
    if kind is MediaKind.video:
        return signal is Signal.face_manipulation
    return source in PHOTO_FAKE_SOURCES_OF[signal]


def unique(records: Sequence[FileScores]) -> list[FileScores]:
    """One record per file: named sets can share files (the FaceForensics++ sets share their reals)."""
    seen: dict[str, FileScores] = {}
    for record in records:
        seen.setdefault(record.sha256, record)
    return list(seen.values())


def source_scores(records, signal, kind, aggregation, config) -> list[SourceScores]:
    """Replay every stored file of `kind` through `ml.aggregate.decide`; group its scores by source."""
    from ml.evaluate.scoring import replay

    placeholder = {s: OperatingPoint(signal=s, media_kind=kind, aggregation=aggregation, threshold=1.0,
                                     inconclusive_threshold=1.0, calibration_set="replay")
                   for s in (Signal.face_manipulation, Signal.synthetic_face)}
    by_source: dict[str, tuple[list[float], list[float]]] = {}
    for record in records:
        if record.kind is not kind:
            continue
        if record.label == 1 and not counts_as_fake(record.source, signal, kind):
            continue
        decision = replay(record, aggregation, points=placeholder, config=config)
        score = next((s.score for s in decision.signals if s.signal is signal), None)
        if score is None:
            continue
        by_source.setdefault(record.source, ([], []))[record.label].append(score)
    return [SourceScores(name, np.array(real), np.array(fake)) for name, (real, fake) in sorted(by_source.items())]


def calibrate_scores(records, config, signals=(Signal.face_manipulation,),
                     existing: Sequence[OperatingPoint] = ()) -> tuple[list[OperatingPoint], dict]:
    """Every (signal, kind, aggregation) point that the stored scores allow, with its figures.

    The synthetic-face signal's video points rest on its photo points: those fitted here, else the
    ones in `existing` (the checkpoint's, fitted by `python -m ml.train.synthetic`).
    """
    records = unique(records)
    points, figures = [], {}
    for signal in signals:
        for kind in MediaKind:
            if signal is Signal.synthetic_face and kind is MediaKind.video:
                continue  # fitted on its photo points and real videos, below
            for aggregation in Aggregation:
                sources = source_scores(records, signal, kind, aggregation, config)
                if not [s for s in sources if _fittable(s)]:
                    continue
                point, detail = calibrate_point(sources, signal=signal, kind=kind, aggregation=aggregation)
                points.append(point)
                figures[f"{signal}/{kind}/{aggregation}"] = {"point": point.model_dump(mode="json"), **detail}
    if Signal.synthetic_face in signals:
        photo = [p for p in points if p.signal is Signal.synthetic_face] or [
            p for p in existing if p.signal is Signal.synthetic_face and p.media_kind is MediaKind.image]
        videos = {aggregation: source_scores(records, Signal.synthetic_face, MediaKind.video, aggregation, config)
                  for aggregation in Aggregation}
        video_points, video_figures = synthetic_video_points(photo, videos)
        points += video_points
        figures.update(video_figures)
    return points, figures


def synthetic_video_points(photo_points: Sequence[OperatingPoint],
                           videos: Mapping[Aggregation, list[SourceScores]]) -> tuple[list[OperatingPoint], dict]:
    """The synthetic-face signal on video: at most "inconclusive", never "signs of manipulation".

    No generated video exists here to fit it on or to measure what it catches, and on real video
    the head misfires (UADFV's low-resolution real videos score as high as StyleGAN2 photos: the
    photo threshold flags 10 % of them, where the face-manipulation point flags 2 %). So on video a
    high synthetic score makes the file inconclusive, from the lowest score that at most 5 % of
    every fitting source's real videos reach, never below the photo point's threshold (from the
    photo threshold alone without real videos); its threshold is `NEVER`. Leave-one-source-out:
    the share of a held-out source's real videos it makes inconclusive.
    """
    points, figures = [], {}
    for photo in photo_points:
        if photo.signal is not Signal.synthetic_face or photo.media_kind is not MediaKind.image:
            continue
        sources = videos.get(photo.aggregation, [])
        fittable = [s for s in sources if _fittable(s)]

        def fit(on: list[SourceScores], floor: float = photo.threshold) -> float:
            return max([floor, *(threshold_for_rate(s.real, MANIPULATED_FALSE_ALARM) for s in on)])

        inconclusive = fit(fittable)
        loso = {}
        for held_out in sources:
            others = [s for s in fittable if s.source != held_out.source]
            without = fit(others)
            loso[held_out.source] = {"fitted_on": [s.source for s in others], "threshold": NEVER,
                                     "inconclusive_threshold": without, **rates(held_out, NEVER, without)}
        held_out = _mean([r["real_inconclusive_rate"] for name, r in loso.items() if name not in EVAL_ONLY_SOURCES])
        per_source = ", ".join(f"{name} {_pct(r['real_inconclusive_rate'])}" for name, r in loso.items())
        fitted_on = ", ".join(s.source for s in fittable) or "no real video"
        point = OperatingPoint(
            signal=Signal.synthetic_face, media_kind=MediaKind.video, aggregation=photo.aggregation,
            threshold=NEVER, inconclusive_threshold=inconclusive, target_false_alarm_rate=0.0,
            false_alarm_rate=0.0, catch_rate=None,
            calibration_set=f"on video never 'signs of manipulation' (no generated videos to fit or check it on); "
            f"inconclusive from the lowest score reached by at most {MANIPULATED_FALSE_ALARM:.0%} of the real "
            f"videos of {fitted_on}, not below the photo threshold {photo.threshold:.4f}; real videos made "
            f"inconclusive, leave-one-source-out: {per_source or 'n/a'}",
        )
        points.append(point)
        figures[f"{Signal.synthetic_face}/{MediaKind.video}/{photo.aggregation}"] = {
            "point": point.model_dump(mode="json"), "loso": loso,
            "fitted_on_all": {s.source: rates(s, NEVER, inconclusive) for s in sources},
            "held_out_false_alarm_rate": 0.0 if sources else None, "held_out_catch_rate": None,
            "held_out_real_inconclusive_rate": held_out}
    return points, figures


def best_aggregation(figures: dict, signal: Signal = Signal.face_manipulation,
                     kind: MediaKind = MediaKind.video) -> Aggregation | None:
    """The strategy with the most fakes caught on held-out sources among those within 5 % false alarms.

    Failing that (no strategy within 5 % on held-out sources), the one with the fewest false alarms.
    """
    candidates = {Aggregation(key.split("/")[2]): value for key, value in figures.items()
                  if key.startswith(f"{signal}/{kind}/")}
    if not candidates:
        return None

    def key(aggregation: Aggregation) -> tuple:
        value = candidates[aggregation]
        fpr, catch = value["held_out_false_alarm_rate"] or 0.0, value["held_out_catch_rate"] or 0.0
        within = fpr <= MANIPULATED_FALSE_ALARM + 1e-9
        return (within, catch if within else -fpr, -fpr)

    return max(candidates, key=key)


def write_calibrated_checkpoint(source: Path, target: Path, points: list[OperatingPoint], *,
                                version: str | None = None, keep_signals: bool = True) -> str:
    """Copy `source` with `points` (replacing those of the same signal, kind and aggregation); its SHA-256."""
    from safetensors.torch import load_file, save_file

    from ml.model import CONFIG_METADATA_KEY, file_sha256, read_checkpoint_config

    config = read_checkpoint_config(source)
    keys = {(p.signal, p.media_kind, p.aggregation) for p in points}
    kept = [p for p in config.operating_points if keep_signals and (p.signal, p.media_kind, p.aggregation) not in keys]
    update: dict = {"operating_points": tuple(kept + list(points))}
    if version:
        update["version"] = version
    config = config.model_copy(update=update)
    if source.resolve() == target.resolve():
        raise ValueError("Write the calibrated checkpoint to a new file; the source stays as it is.")
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(load_file(str(source)), str(target), metadata={CONFIG_METADATA_KEY: config.model_dump_json()})
    return file_sha256(target)


def markdown_report(figures: dict, best: Aggregation | None) -> str:
    lines = ["# Operating points", "",
             f"Manipulated threshold: each fitting source's reals flagged <= {MANIPULATED_FALSE_ALARM:.0%}; "
             f"inconclusive from {INCONCLUSIVE_FALSE_ALARM:.0%}. Leave-one-source-out (LOSO): thresholds fitted "
             "without the source, rates measured on it.", "",
             "| signal / kind / aggregation | threshold | inconclusive from | held-out source | fitted on | "
             "LOSO false alarm | LOSO catch | LOSO real inconclusive | false alarm at final | catch at final | "
             "real inconclusive at final |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, value in figures.items():
        point = value["point"]
        for source, loso in value["loso"].items():
            final = value["fitted_on_all"][source]
            lines.append(f"| {key} | {_threshold(point['threshold'])} | {point['inconclusive_threshold']:.4f} | "
                         f"{source} ({loso['real']} real / {loso['fake']} fake) | {', '.join(loso['fitted_on'])} | "
                         f"{_pct(loso['false_alarm_rate'])} | {_pct(loso['catch_rate'])} | "
                         f"{_pct(loso.get('real_inconclusive_rate'))} | {_pct(final['false_alarm_rate'])} | "
                         f"{_pct(final['catch_rate'])} | {_pct(final.get('real_inconclusive_rate'))} |")
        lines.append(f"| {key} | | | **mean over held-out sources** | | "
                     f"**{_pct(value['held_out_false_alarm_rate'])}** | **{_pct(value['held_out_catch_rate'])}** | "
                     f"{_pct(value.get('held_out_real_inconclusive_rate'))} | | | |")
    lines += ["", f"Best video aggregation on held-out sources at <= 5 % false alarms: **{best}**.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import logging
    import sys

    from ml.config import PipelineConfig
    from ml.evaluate.scoring import read_scores
    from ml.model import read_checkpoint_config

    parser = argparse.ArgumentParser(prog="python -m ml.train.calibrate",
                                     description="Fit operating points from `python -m ml.evaluate` scores.")
    parser.add_argument("--scores", type=Path, action="append", required=True,
                        help="scores.json of `python -m ml.evaluate` (repeatable; same weights)")
    parser.add_argument("--checkpoint", type=Path, help="the checkpoint the scores came from, or one with its "
                        "weights (a re-calibration of it)")
    parser.add_argument("--out-checkpoint", type=Path, help="write a copy with the operating points here")
    parser.add_argument("--version", help="version string of the written checkpoint (default: unchanged)")
    parser.add_argument("--report", type=Path, required=True, help="folder for calibration.md / .json")
    parser.add_argument("--signal", type=Signal, choices=list(Signal), action="append", default=[],
                        help="fit only this signal (repeatable; default: every signal the scores have). The "
                             "written checkpoint keeps its other points, e.g. the synthetic-face points that "
                             "`python -m ml.train.synthetic` fitted")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    records, digests, weights, config = [], set(), set(), None
    for path in args.scores:
        header, sets = read_scores(path)
        digests.add(header["checkpoint_sha256"])
        weights.add(header.get("weights_digest"))
        config = PipelineConfig.model_validate(header["pipeline_config"])
        records += [r for rows in sets.values() for r in rows]
    if len(digests) != 1 and (None in weights or len(weights) != 1):
        parser.error(f"--scores come from checkpoints with different weights: {sorted(digests)}")
    assert config is not None
    has_synthetic = any(f.p_synthetic is not None for r in records for f in r.faces)
    signals = (Signal.face_manipulation, Signal.synthetic_face) if has_synthetic else (Signal.face_manipulation,)
    if args.signal:
        missing = [str(s) for s in args.signal if s not in signals]
        if missing:
            parser.error(f"the scores have no {', '.join(missing)} signal")
        signals = tuple(args.signal)
    existing = read_checkpoint_config(args.checkpoint).operating_points if args.checkpoint else ()
    points, figures = calibrate_scores(records, config, signals, existing)
    best = best_aggregation(figures)
    args.report.mkdir(parents=True, exist_ok=True)
    (args.report / "calibration.json").write_text(json.dumps({"best_video_aggregation": best, "figures": figures},
                                                             indent=2))
    text = markdown_report(figures, best)
    (args.report / "calibration.md").write_text(text)
    sys.stdout.write(text + "\n")
    if args.out_checkpoint:
        if args.checkpoint is None:
            parser.error("--out-checkpoint needs --checkpoint")
        from ml.model import file_sha256, weights_digest

        if file_sha256(args.checkpoint) not in digests and weights_digest(args.checkpoint) not in weights:
            parser.error("--checkpoint does not compute the scores given (neither their checkpoint nor its weights)")
        digest = write_calibrated_checkpoint(args.checkpoint, args.out_checkpoint, points, version=args.version)
        logging.getLogger(__name__).info("wrote %s (SHA-256 %s)", args.out_checkpoint, digest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
