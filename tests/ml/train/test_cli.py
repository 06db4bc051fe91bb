"""`python -m ml.train` argument parsing: the mix option takes known kinds and refuses the rest."""

from __future__ import annotations

import pytest

from ml.train.__main__ import parse_args


def test_mix_is_parsed_into_the_settings() -> None:
    settings, resume = parse_args(["--mix", "dfdc_real=0.5,dfdc_fake=0.3,sbi=0.2", "--resume"])
    assert settings.mix == {"dfdc_real": 0.5, "dfdc_fake": 0.3, "sbi": 0.2}
    assert resume


@pytest.mark.parametrize("mix", ["dfdc_reel=1", "sbi=-0.1,dfdc_real=1", "sbi=lots", "sbi=0"])
def test_a_bad_mix_is_refused(mix: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--mix", mix])
    assert "--mix" in capsys.readouterr().err
