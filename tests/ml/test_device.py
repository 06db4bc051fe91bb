from __future__ import annotations

import pytest
import torch

from ml.device import DeviceError, autocast_dtype, resolve_device


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(None) == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("ml.device._mps_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr("ml.device._mps_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_explicit_devices_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="CUDA was requested"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="Unknown device"):
        resolve_device("abacus")


def test_the_classifier_runs_in_bf16_on_gpus_that_have_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert autocast_dtype(torch.device("cpu")) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert autocast_dtype(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert autocast_dtype(torch.device("cuda:1")) == torch.float16
