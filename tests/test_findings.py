"""findings.finding: claimed for some data and profiles; fails a build, a note for students."""

import pytest

from course_utils import config, findings


@pytest.fixture
def checking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(findings.CHECK_ENV, "1")


@pytest.fixture
def student(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(findings.CHECK_ENV, raising=False)


def stand_in(profile: str) -> config.Run:
    return config.start_run("cifar10", profile=profile, data="embedded", quiet=True)


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_false_finding_fails_the_course_build(checking: None, profile: str) -> None:
    with pytest.raises(AssertionError, match="claims that BN helps .*stand-in.*0.2 points"):
        findings.finding(stand_in(profile), "BN helps", holds=False, evidence="0.2 points")


def test_false_finding_is_a_note_in_a_students_run(
    student: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        findings.finding(stand_in("quick"), "BN helps", holds=False, evidence="-1 point") is False
    )
    out = capsys.readouterr().out
    assert out.startswith("NOTE: the text claims that BN helps (for the stand-in data")
    assert "this run found otherwise: -1 point" in out
    assert "another dataset" in out and "seed" in out and "device" in out


def test_true_finding_is_printed_with_its_scope(
    checking: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert findings.finding(stand_in("quick"), "BN helps", holds=True, evidence="+4 points") is True
    assert capsys.readouterr().out == (
        "FINDING (holds; claimed for the stand-in data in the quick and full profiles): "
        "BN helps. Evidence: +4 points.\n"
    )


@pytest.mark.parametrize(
    ("profile", "data", "profiles", "kinds"),
    [
        ("smoke", "embedded", ("quick", "full"), ("embedded",)),
        ("quick", "embedded", ("full",), ("embedded",)),
        ("quick", "embedded", ("quick",), ("real",)),
    ],
)
def test_a_run_the_claim_is_not_made_for_only_reports(
    checking: None,
    capsys: pytest.CaptureFixture[str],
    profile: str,
    data: str,
    profiles: tuple[str, ...],
    kinds: tuple[str, ...],
) -> None:
    run = config.start_run("cifar10", profile=profile, data=data, quiet=True)
    assert (
        findings.finding(run, "BN helps", False, "-1 point", data=kinds, profiles=profiles) is False
    )
    assert capsys.readouterr().out.startswith("FINDING (not claimed for this run")


def test_scope_rejects_unknown_data() -> None:
    with pytest.raises(ValueError, match="data kind"):
        findings.scope(("cifar",), ("quick",))
