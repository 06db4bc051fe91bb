"""Choose the torch device once, in one place: CUDA, then Apple MPS, then CPU, unless told; and the
reduced precision the classifier runs in on it."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """The requested device does not exist on this machine."""


def resolve_device(requested: str | torch.device | None = None) -> torch.device:
    """The device to run on: `requested` if given (checked), else the fastest available.

    `None` or `"auto"` picks CUDA, then MPS, then CPU. Asking for a device that is not there
    fails instead of silently running somewhere slower.
    """
    if requested is None or (isinstance(requested, str) and requested.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"Unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps.") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but no CUDA GPU is available.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"CUDA device {device.index} requested; only {torch.cuda.device_count()} present.")
    if device.type == "mps" and not _mps_available():
        raise DeviceError("MPS was requested but Apple Metal is not available.")
    if device.type not in {"cpu", "cuda", "mps"}:
        raise DeviceError(f"Unsupported device type {device.type!r}; use cpu, cuda or mps.")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast precision for the classifier on `device`, None for full precision.

    bf16 on CUDA GPUs that have it (Ampere and later: A100, H100, H200): fp16's range is what an
    overflowing logit or Grad-CAM gradient runs into, bf16 has float32's, and a sigmoid score needs
    no more than bf16's 3 significant digits. Older GPUs get fp16. CPUs and MPS run in float32 (ONNX
    Runtime serves CPUs anyway)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
