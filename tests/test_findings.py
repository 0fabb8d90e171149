"""findings.finding: asserted in real profiles, only printed in smoke."""

import pytest

from course_utils import config, findings


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_false_finding_fails_a_real_run(profile: str) -> None:
    run = config.start_run(profile=profile, quiet=True)
    with pytest.raises(AssertionError, match="claims that BN helps.*0.2 points"):
        findings.finding(run, "BN helps", holds=False, evidence="0.2 points")


def test_true_finding_is_printed_and_returned(capsys: pytest.CaptureFixture[str]) -> None:
    run = config.start_run(profile="quick", quiet=True)
    assert findings.finding(run, "BN helps", holds=True, evidence="+4 points") is True
    assert capsys.readouterr().out == "FINDING (holds): BN helps. Evidence: +4 points.\n"


def test_smoke_only_reports(capsys: pytest.CaptureFixture[str]) -> None:
    run = config.start_run(profile="smoke", quiet=True)
    assert findings.finding(run, "BN helps", holds=False, evidence="-1 point") is False
    assert "not checked in the smoke profile" in capsys.readouterr().out
