"""The gradebook stays small whatever a submission prints (issue 18, class 8).

A 20 MB line in a stored checked output became a 20 MB diff in gradebook.md and
gradebook.json, for every such submission, rewritten after each one. Every text a
submission controls is now cut to a cap, and the cut says so.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

from course_utils.instructor.verify import ERROR, MISMATCH, CellCheck, Limits, Verdict, report
from course_utils.instructor.verify.submission import solution_tokens

LINE = "7" * 20 * 2**20  # the 20 MB line of the issue
SMALL = 200_000  # bytes: what a report of three submissions may take, far below one line


def hostile(name: str) -> Verdict:
    """A verdict whose every submission-controlled text holds the 20 MB line."""
    return Verdict(
        name,
        MISMATCH,
        f"cell 3: ValueError: {LINE}",
        template="a1.ipynb",
        sha256="ab" * 32,
        stored_errors=[f"cell 3: ValueError: {LINE}", *(f"cell {i}: E" for i in range(999))],
        errors=[f"cell 4: {LINE}"],
        checks=[CellCheck(5, "print(widths)", True, diff=f"-{LINE}\n+[24, 20, 10]")],
        results={"accuracy": LINE},
        answers={"answer-1": LINE},
        tokens=solution_tokens([f"def {'f' * len(LINE)}():\n    return {LINE}"]),
    )


def test_reports_stay_small_after_several_20_mb_submissions(tmp_path: Path) -> None:
    gradebook = report.Gradebook(tmp_path / "gradebook.csv", [], Limits(), "bubblewrap")
    for student in ("ana", "ben", "cem"):
        gradebook.add(hostile(f"{student}/a1.ipynb"))
    gradebook.write()
    for path in (gradebook.csv, gradebook.markdown, gradebook.state):
        assert path.stat().st_size < SMALL, f"{path.name}: {path.stat().st_size} bytes"
    text = gradebook.markdown.read_text()
    assert f"[cut at {report.DIFF_CAP} characters]" in text
    # Outside the diff's code fence, the Markdown escapes the brackets.
    assert f"\\[cut at {report.TEXT_CAP} characters\\]" in text
    assert f"980 more \\[cut at {report.ENTRIES_CAP} entries\\]" in text
    state = json.loads(gradebook.state.read_text())[0]
    assert state["answers"]["answer-1"].endswith(f"[cut at {report.ANSWER_CAP} characters]")
    assert state["results"]["accuracy"].endswith(f"[cut at {report.TEXT_CAP} characters]")
    with open(gradebook.csv, newline="") as handle:
        row = next(csv.DictReader(handle))
    assert (row["stored_errors"], row["errors"]) == ("1000", "1"), "counts survive the cut"


def test_figures_are_kept_in_order_up_to_their_cap(tmp_path: Path) -> None:
    figure = {"cell": "c1", "after": "t1", "png": "i" * 2**20}
    gradebook = report.Gradebook(tmp_path / "gradebook.csv", [], Limits(), "bubblewrap")
    gradebook.add(Verdict("a.ipynb", ERROR, "cell 9: KeyError", figures=[figure] * 30))
    kept = json.loads(gradebook.state.read_text())[0]
    assert len(kept["figures"]) == report.FIGURES_CAP // 2**20 == 3
    assert f"27 figures left out of the gradebook (cut at {report.FIGURES_CAP}" in kept["note"]


def test_an_old_unbounded_gradebook_is_cut_when_resumed(tmp_path: Path) -> None:
    state = tmp_path / "gradebook.json"
    state.write_text(json.dumps([dataclasses.asdict(hostile("ana/a1.ipynb"))]))
    gradebook = report.Gradebook(tmp_path / "gradebook.csv", [], Limits(), "bubblewrap")
    gradebook.write()
    assert state.stat().st_size < SMALL


def test_what_is_short_is_kept_whole() -> None:
    verdict = Verdict("a.ipynb", ERROR, "cell 2: NameError", errors=["cell 2: NameError: x"])
    assert report.bounded(verdict) == verdict
