"""`python -m ml.train` argument parsing: the mix option takes known kinds and refuses the rest."""

from __future__ import annotations

import pytest

from ml.train.__main__ import parse_args


def test_mix_is_parsed_into_the_settings() -> None:
    settings, resume = parse_args(["--mix", "dfdc_real=0.5,dfdc_fake=0.3,sbi=0.2", "--resume"])
    assert settings.mix == {"dfdc_real": 0.5, "dfdc_fake": 0.3, "sbi": 0.2}
    assert resume


def test_named_mixes_and_sources_are_parsed() -> None:
    from ml.train.dataset import SBI_ONLY_MIX

    settings, _ = parse_args(["--mix", "sbi_only", "--sources", "dfdc,utkface"])
    assert settings.mix == SBI_ONLY_MIX
    assert settings.sources == ("dfdc", "utkface")
    settings, _ = parse_args(["--mix", "nuaa_real=0.5,sbi=0.5"])
    assert settings.mix == {"nuaa_real": 0.5, "sbi": 0.5}


@pytest.mark.parametrize("sources", ["uadfv", "dfdc,timit", "nope", ""])
def test_unseen_or_unknown_sources_cannot_be_trained_on(sources: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--sources", sources])
    assert "--sources" in capsys.readouterr().err


@pytest.mark.parametrize(
    "mix", ["dfdc_reel=1", "sbi=-0.1,dfdc_real=1", "sbi=lots", "sbi=0", "timit_fake=1", "ffhq_sg2_fake=1"]
)
def test_a_bad_mix_is_refused(mix: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--mix", mix])
    assert "--mix" in capsys.readouterr().err


def test_the_blend_mask_ablation_is_a_closed_choice(capsys: pytest.CaptureFixture[str]) -> None:
    from ml.train.sbi import BlendMask

    assert parse_args([])[0].blend_mask is BlendMask.landmarks
    assert parse_args(["--blend-mask", "ellipse"])[0].blend_mask is BlendMask.ellipse
    with pytest.raises(SystemExit):
        parse_args(["--blend-mask", "circle"])
    assert "--blend-mask" in capsys.readouterr().err
