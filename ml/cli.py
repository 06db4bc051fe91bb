"""`deepscreen`: the command line for the analysis pipeline.

    deepscreen analyze FILE [FILE ...] [--json] [--explain DIR] [--device auto|cpu|cuda|mps]
                       [--frames N] [--checkpoint PATH] [--backend auto|torch|onnx]
                       [--aggregation mean|trimmed_top|confident]
    deepscreen train ...      (delegates to the training command, `python -m ml.train`)
    deepscreen evaluate ...   (delegates to `ml.evaluate`)

Exit codes of `analyze`, usable by scripts (the scheme of virus scanners such as clamscan):
    0  every file was analysed and none shows signs of manipulation (inconclusive ones included)
    1  at least one file shows signs of manipulation, whatever happened to the others
    2  usage error (bad arguments)
    3  none shows signs of manipulation, but at least one file could not be analysed (unreadable,
       unsupported, too long) or had no face to screen (its result: inconclusive, no_face_found)
    4  nothing could be analysed: the model or device could not be loaded
Precedence: 2 and 4 stop before any file is read; then 1 > 3 > 0. A detection outranks a failure,
so a script acting on 1 never misses a flagged file because another one in the batch was unreadable.

`--explain DIR` writes each input's heat maps to DIR/<position>-<file name>/ (position 1, 2, ... on
the command line), so two inputs with the same name never share a folder.

`--json` writes one JSON object per file and line (JSON Lines) to stdout: `{"file": ..., "result":
<AnalysisResult>}` or `{"file": ..., "error": {"code", "message", "details"}}`. The progress bar
and logs go to stderr, so stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from ml.config import DEFAULT_AGGREGATION
from ml.contracts import Aggregation, AnalysisError, AnalysisResult, ErrorCode, Label, LowConfidenceReason, Stage

logger = logging.getLogger("deepscreen")

EXIT_OK = 0
EXIT_FAKE_FOUND = 1
EXIT_USAGE = 2
EXIT_FILE_FAILED = 3
EXIT_CANNOT_START = 4

DELEGATES: dict[str, tuple[str, ...]] = {
    "train": ("ml.train", "ml.train.__main__"),
    "evaluate": ("ml.evaluate", "ml.evaluate.__main__"),
}
"""Subcommands owned by other modules: `deepscreen NAME ARGS` calls the first `main(ARGS)` found."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepscreen", description="Screen faces in images and videos for "
                                     "deepfake manipulation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    analyze = commands.add_parser("analyze", help="analyse image and video files",
                                  description="Analyse image and video files. Exit codes: 0 analysed, no signs "
                                  "of manipulation; 1 signs of manipulation in at least one file (outranks 3); "
                                  "2 usage; 3 a file failed or had no face; 4 model or device could not be loaded.")
    analyze.add_argument("files", nargs="+", type=Path, metavar="FILE")
    analyze.add_argument("--json", action="store_true", help="JSON Lines on stdout, one result per file")
    analyze.add_argument("--explain", type=Path, metavar="DIR",
                         help="write Grad-CAM overlays of the most suspicious faces to DIR/<position>-<file name>/")
    analyze.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    analyze.add_argument("--frames", type=int, metavar="N", help="frames sampled per video (default 32)")
    analyze.add_argument("--checkpoint", type=Path, metavar="PATH", help="model checkpoint (.safetensors); "
                         "default: the shipped model")
    analyze.add_argument("--backend", choices=["auto", "torch", "onnx"], help="classifier runtime (default auto)")
    analyze.add_argument("--aggregation", choices=[a.value for a in Aggregation],
                         help=f"how face scores become a file score (default {DEFAULT_AGGREGATION})")
    analyze.add_argument("--face-crops", action="store_true", help="inputs are already face crops: no detection")
    analyze.add_argument("--no-progress", action="store_true", help="no progress bar")
    analyze.set_defaults(handler=_analyze)

    for name in DELEGATES:
        delegate = commands.add_parser(name, help=f"{name} a model (see `deepscreen {name} --help`)", add_help=False)
        delegate.add_argument("args", nargs=argparse.REMAINDER)
        delegate.set_defaults(handler=_delegate(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in DELEGATES:  # hand everything after the name over untouched, --help included
        return _delegate(argv[0])(argparse.Namespace(args=argv[1:]))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(args.handler(args))


def _delegate(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        for module_name in DELEGATES[name]:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name is not None and module_name.startswith(exc.name):
                    continue
                raise
            entry = getattr(module, "main", None)
            if callable(entry):
                return int(entry(list(args.args)) or 0)
        _err(f"deepscreen {name}: not available in this installation.")
        return EXIT_CANNOT_START

    return run


def _analyze(args: argparse.Namespace) -> int:
    from ml.config import PipelineConfig
    from ml.device import DeviceError
    from ml.model import CheckpointError
    from ml.pipeline import Pipeline

    overrides = {key: value for key, value in {
        "frames": args.frames, "backend": args.backend, "aggregation": args.aggregation,
    }.items() if value is not None}
    if args.face_crops:
        overrides["face_crops"] = True
    try:
        config = PipelineConfig(**overrides)
    except ValueError as exc:
        _err(f"deepscreen analyze: {exc}")
        return EXIT_USAGE
    try:
        pipeline = Pipeline(config, device=args.device, checkpoint=args.checkpoint)
    except (CheckpointError, DeviceError) as exc:
        _err(f"deepscreen analyze: {exc}")
        return EXIT_CANNOT_START

    failed = fake_found = False
    for position, path in enumerate(args.files, start=1):
        artifacts_dir = explain_dir(args.explain, position, path) if args.explain else None
        try:
            result = _run_with_progress(pipeline, path, artifacts_dir, show=not args.no_progress)
        except AnalysisError as exc:
            failed = True
            _report_error(path, exc.code, exc.message, exc.details, as_json=args.json)
            continue
        except OSError as exc:
            failed = True
            _report_error(path, ErrorCode.corrupt_media, f"Cannot read the file: {exc.strerror or exc}", {},
                          as_json=args.json)
            continue
        if LowConfidenceReason.no_face_found in result.low_confidence_reasons:
            failed = True
        fake_found = fake_found or result.label is Label.manipulated
        if args.json:
            _write_json({"file": str(path), "result": result.model_dump(mode="json")})
        else:
            sys.stdout.write(summarise(path, result, artifacts_dir))
            sys.stdout.flush()
    return exit_status(fake_found=fake_found, failed=failed)


def exit_status(*, fake_found: bool, failed: bool) -> int:
    """The batch's exit code once every file was tried: 1 outranks 3, which outranks 0."""
    if fake_found:
        return EXIT_FAKE_FOUND
    return EXIT_FILE_FAILED if failed else EXIT_OK


def explain_dir(root: Path, position: int, path: Path) -> Path:
    """The input's own heat-map folder: its position keeps same-named inputs apart."""
    return root / f"{position}-{path.name}"


def _run_with_progress(pipeline, path: Path, artifacts_dir: Path | None, *, show: bool) -> AnalysisResult:
    from tqdm import tqdm

    with tqdm(total=100, desc=path.name, unit="%", file=sys.stderr, leave=False, disable=True if not show else None,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}") as bar:
        def progress(stage: Stage, percent: float) -> None:
            bar.set_postfix_str(stage.value, refresh=False)
            bar.update(max(0.0, percent - bar.n))

        return pipeline.run(path, progress=progress, artifacts_dir=artifacts_dir)


def _report_error(path: Path, code: str, message: str, details: dict[str, object], *, as_json: bool) -> None:
    if as_json:
        _write_json({"file": str(path), "error": {"code": str(code), "message": message, "details": details}})
    else:
        _err(f"{path}: ERROR {code}: {message}")


def _err(message: str) -> None:
    """A line for the person at the terminal (the CLI's output, not a log record)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _write_json(payload: dict[str, object], stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(json.dumps(payload) + "\n")
    stream.flush()


def summarise(path: Path, result: AnalysisResult, artifacts_dir: Path | None = None) -> str:
    """A few human-readable lines for one result."""
    verdict = {Label.manipulated: "SIGNS OF MANIPULATION", Label.no_signs: "no signs of manipulation found",
               Label.inconclusive: "INCONCLUSIVE"}[result.label]
    score = "n/a" if result.score is None else f"{result.score:.3f}"
    frames_with_faces = sum(1 for f in result.frames if f.face_count)
    lines = [
        f"{path}: {verdict}  score {score} (threshold {result.decision.threshold:.3f}, {result.aggregation})",
        f"  {len(result.faces)} faces in {frames_with_faces}/{len(result.frames)} sampled frames, "
        f"{len(result.tracks)} {'person' if len(result.tracks) == 1 else 'people'}; "
        f"{result.stage_seconds.get('total', 0.0):.2f} s on {result.device}",
    ]
    for track in sorted(result.tracks, key=lambda t: -t.score):
        lines.append(f"  person {track.track_id}: {track.score:.3f} over {track.face_count} faces "
                     f"({track.first_seconds:.1f}-{track.last_seconds:.1f} s), max {track.max_p_fake:.3f}")
    if result.low_confidence_reasons:
        lines.append(f"  low confidence: {', '.join(result.low_confidence_reasons)}")
    lines.extend(f"  note: {note}" for note in result.notes)
    if artifacts_dir is not None and result.artifacts:
        lines.append(f"  explanations: {artifacts_dir} ({len(result.artifacts)} images)")
    lines.append(f"  model {result.model.model_id} {result.model.version} ({result.model.sha256[:12]})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
