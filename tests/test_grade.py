"""``course grade``: questions and rubrics, the database, scores CSV, feedback, LMS, server.

Every test grades a small class built by :func:`make_class`: one solution notebook with a
checked cell, a hidden test, a figure and two written-answer questions, three students'
submissions and a ``gradebook.json`` as ``course verify`` writes it (answers and figures
in it for one student, read from the notebook for the other).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from course_utils.instructor.cli import main
from course_utils.instructor.grade.feedback import feedback_html
from course_utils.instructor.grade.lms import export_lms, read_roster
from course_utils.instructor.grade.load import load_class
from course_utils.instructor.grade.questions import load_questions
from course_utils.instructor.grade.scores_csv import export_scores, import_scores, read_scores
from course_utils.instructor.grade.server import GradingServer
from course_utils.instructor.grade.store import Store
from course_utils.instructor.release import student_notebook

PNG = (  # one pixel
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"
    "AAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
HIDDEN_SOURCE = "assert student.x == 12345  # SECRET_EXPECTED"
HIDDEN_MESSAGE = "AssertionError: 12345 != 1 LEAKED_MESSAGE"
Q1_PROMPT = (
    "**Question.** A convolution flips its kernel, $y[i] = \\sum_k x[i - k]\\, w[k]$. "
    "Why does a CNN not need the flip?\n\n**Answer.**\n"
)
ALICE_Q1 = "A learned kernel can be the flipped one: which way round is a matter of naming."
REFERENCE = "The kernel is learned: training finds the flipped weights just as well."
ALICE_Q2 = "It switches random units off while training, so none can be relied on."
Q2_PROMPT = "**2. What does dropout do?**"
LEARNED, FLIPPED = "the weights are learned", "a flipped kernel is just another kernel"
ZEROES, RESCALES = "zeroes activations at random in training", "rescales the kept ones"


@dataclass
class Class:
    """A graded class on disk: templates, submissions, gradebook, grading database."""

    templates: Path
    gradebook: Path
    db: Path
    alice: str
    bob: str


def template_notebook() -> nbformat.NotebookNode:
    """The solution notebook of the class."""
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    return nbformat.v4.new_notebook(
        cells=[
            md("# Task 1", id="title"),
            code("x = 1\nprint(x)", id="chk1", metadata={"tags": ["nbval-check-output"]}),
            code(
                HIDDEN_SOURCE,
                id="hid1",
                metadata={"tags": ["hidden-test"], "course": {"points": 3, "name": "x anew"}},
            ),
            code("plt.plot([1, 2])\nplt.show()", id="plot1"),
            md(
                Q1_PROMPT + f"### BEGIN SOLUTION\n{REFERENCE}\n### END SOLUTION",
                id="q1",
                metadata={
                    "course": {
                        "rubric": [
                            {"id": "reason", "points": 2, "description": LEARNED},
                            {"id": "example", "points": 1, "description": FLIPPED},
                        ]
                    }
                },
            ),
            md(Q2_PROMPT, id="p2"),
            md(
                "*Answer.*\n### BEGIN SOLUTION\nIt zeroes units.\n### END SOLUTION",
                id="q2",
                metadata={
                    "course": {
                        "rubric": [
                            {"id": "zeroes", "points": 1, "description": ZEROES},
                            {"id": "scales", "points": 1, "description": RESCALES},
                        ]
                    }
                },
            ),
        ]
    )


def submission(answer1: str, answer2: str) -> nbformat.NotebookNode:
    """A student's executed notebook: the release with their answers, outputs stored."""
    nb = template_notebook()
    nb.cells = [cell for cell in nb.cells if cell.id != "hid1"]
    by_id = {cell.id: cell for cell in nb.cells}
    by_id["q1"].source = Q1_PROMPT + answer1
    by_id["q2"].source = "*Answer.*\n" + answer2
    by_id["chk1"].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    by_id["plot1"].outputs = [nbformat.v4.new_output("display_data", data={"image/png": PNG})]
    for cell in nb.cells:
        cell.metadata.pop("course", None)
    return nb


def make_class(root: Path) -> Class:
    """Write the class under ``root`` and load it into a grading database."""
    templates = root / "notebooks"
    templates.mkdir()
    nbformat.write(template_notebook(), templates / "t1.ipynb")
    paths = {}
    answers = {
        "alice": (ALICE_Q1, ALICE_Q2),
        "bob": ("Because of padding <script>alert('x')</script>", "YOUR ANSWER HERE"),
    }
    for student, (a1, a2) in answers.items():
        folder = root / "submissions" / student
        folder.mkdir(parents=True)
        paths[student] = folder / "t1.ipynb"
        nbformat.write(submission(a1, a2), paths[student])
    checked = {"index": 1, "title": "x = 1", "ran": True, "kind": "checked", "diff": ""}
    # As verify keeps it: the public name as title; fields no page may show added.
    hidden = {"index": 2, "kind": "hidden", "title": "x anew", "source": HIDDEN_SOURCE}
    verdicts = [
        {
            "submission": str(paths["alice"]),
            "template": "t1.ipynb",
            "status": "verified",
            "checks": [
                {**checked, "passed": True, "points": 2},
                {**hidden, "passed": True, "points": 3},
            ],
            "answers": {"q1": ALICE_Q1, "q2": ALICE_Q2},
            "figures": [{"cell": "plot1", "after": "plot1", "png": PNG}],
        },
        {  # written before verify kept answers: they come from the notebook
            "submission": str(paths["bob"]),
            "template": "t1.ipynb",
            "status": "verified",
            "checks": [
                {**checked, "passed": False, "points": 2, "hint": "did you flip the kernel?"},
                {**hidden, "passed": False, "points": 3, "message": HIDDEN_MESSAGE},
            ],
        },
        {"submission": str(root / "submissions" / "dave" / "x.ipynb"), "status": "INVALID"},
    ]
    gradebook = root / "gradebook.json"
    gradebook.write_text(json.dumps(verdicts))
    db = root / "grading.sqlite"
    store = Store(db)
    load_class(store, gradebook, templates)
    store.close()
    return Class(templates, gradebook, db, str(paths["alice"]), str(paths["bob"]))


@pytest.fixture
def graded(tmp_path: Path) -> Iterator[tuple[Class, Store]]:
    """The class, and an open store on it."""
    course = make_class(tmp_path)
    store = Store(course.db)
    yield course, store
    store.close()


def item_id(store: Store, question: str, key: str) -> int:
    """The database id of a rubric item."""
    return int(
        store.db.execute(
            "SELECT id FROM items WHERE question=? AND key=?", (question, key)
        ).fetchone()[0]
    )


def test_questions_prompt_reference_rubric(tmp_path: Path) -> None:
    course = make_class(tmp_path)
    q1, q2 = load_questions(course.templates)
    assert q1.prompt == Q1_PROMPT.strip()
    assert q1.reference == REFERENCE
    assert [(i.key, i.points) for i in q1.rubric] == [("reason", 2.0), ("example", 1.0)]
    assert q2.prompt == Q2_PROMPT + "\n\n*Answer.*"  # the question is the cell above


def test_load_answers_from_gradebook_and_file_figures_by_question(graded) -> None:
    course, store = graded
    answers = {a["name"]: a for a in store.answers("q1")}
    assert answers[course.alice]["text"] == ALICE_Q1
    assert answers[course.bob]["text"].startswith("Because of padding")  # read from the notebook
    bob_q2 = next(a for a in store.answers("q2") if a["name"] == course.bob)
    assert bob_q2["text"] == ""  # the release's placeholder is no answer
    assert answers[course.alice]["figures"] == [PNG]  # the plot goes with the next question
    assert answers[course.bob]["figures"] == []
    assert {row["name"] for row in store.db.execute("SELECT name FROM submissions")} == {
        course.alice,
        course.bob,
    }


def test_load_reports_what_it_cannot_use(tmp_path: Path) -> None:
    course = make_class(tmp_path)
    report = load_class(Store(tmp_path / "again.sqlite"), course.gradebook, course.templates)
    assert report.submissions == 2
    assert len(report.problems) == 1 and "dave" in report.problems[0]


def test_items_apply_by_reference_and_totals_add_up(graded) -> None:
    course, store = graded
    reason = item_id(store, "q1", "reason")
    store.set_mark(course.alice, reason, True)
    store.set_mark(course.bob, reason, True)
    store.set_mark(course.alice, item_id(store, "q2", "zeroes"), True)
    assert store.manual_points(course.alice) == 3
    store.save_item("q1", "reason", 1.5, "the weights are learned")  # edited once, applies to all
    assert store.manual_points(course.alice, "q1") == 1.5
    assert store.manual_points(course.bob) == 1.5
    totals = {t.submission: t for t in store.totals()}
    assert totals[course.alice].auto_points == 5 and totals[course.bob].auto_points == 0
    assert totals[course.alice].total == 7.5
    assert totals[course.alice].max_points == 5 + 1.5 + 1 + 1 + 1
    store.set_mark(course.alice, reason, False)
    assert store.manual_points(course.alice) == 1


def test_pseudonyms_stable_and_anonymous(graded) -> None:
    course, store = graded
    first = {a["name"]: a["pseudonym"] for a in store.answers("q1")}
    reopened = Store(course.db)
    assert {a["name"]: a["pseudonym"] for a in reopened.answers("q1")} == first
    assert all("alice" not in p and "bob" not in p for p in first.values())
    assert len(set(first.values())) == 2


def test_two_graders_at_once(graded) -> None:
    course, store = graded
    other = Store(course.db)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.set_mark(course.alice, item_id(store, "q1", "reason"), True, grader="ann")
    other.set_mark(course.bob, item_id(other, "q1", "example"), True, grader="ben")
    other.set_note(course.alice, "q1", "good", grader="ben")
    assert store.manual_points(course.bob) == 1
    assert store.answers("q1")[0]["comment"] in ("good", "")
    assert {a["comment"] for a in store.answers("q1")} == {"good", ""}
    other.close()


def test_scores_csv_round_trip(graded, tmp_path: Path) -> None:
    course, store = graded
    store.set_mark(course.alice, item_id(store, "q1", "reason"), True)
    store.set_mark(course.alice, item_id(store, "q1", "example"), True)
    store.set_note(course.alice, "q1", "-clear, but short")  # a spreadsheet's formula start
    store.set_note(course.bob, "q2", "nothing written", adjust=0.5)
    exported = export_scores(store)
    fresh = Store(tmp_path / "fresh.sqlite")
    load_class(fresh, course.gradebook, course.templates)
    assert import_scores(fresh, read_scores(exported)) == 4
    assert export_scores(fresh) == exported
    assert fresh.manual_points(course.alice) == 3 and fresh.manual_points(course.bob) == 0.5
    alice_q1 = next(a for a in fresh.answers("q1") if a["name"] == course.alice)
    assert alice_q1["comment"] == "-clear, but short"


def test_scores_import_points_typed_without_items(graded) -> None:
    course, store = graded
    rows = [{"submission": course.bob, "question": "q1", "items": "", "points": "2.5"}]
    import_scores(store, rows)
    assert store.manual_points(course.bob, "q1") == 2.5


def test_scores_import_checks_every_row_first(graded) -> None:
    course, store = graded
    rows = [
        {"submission": course.alice, "question": "q1", "items": "reason", "points": "2"},
        {"submission": course.bob, "question": "q1", "items": "nonsense", "points": "1"},
        {"submission": "nobody.ipynb", "question": "q1", "items": "", "points": "1"},
    ]
    with pytest.raises(ValueError, match="line 3: question q1 has no item nonsense") as info:
        import_scores(store, rows)
    assert "line 4: no submission 'nobody.ipynb'" in str(info.value)
    assert store.manual_points(course.alice) == 0  # nothing applied


def test_feedback_shows_grades_and_never_hidden_tests_insides(graded) -> None:
    course, store = graded
    store.set_mark(course.bob, item_id(store, "q1", "example"), True)
    store.set_note(course.bob, "q1", "Say why the flip does not matter.")
    page = feedback_html(store, course.bob, template_notebook())
    assert "Total: <strong>1</strong> of 10" in page
    assert "Hidden test <em>x anew</em>: failed, 0 points of 3" in page
    assert "Hint: did you flip the kernel?" in page
    assert f"{FLIPPED} (+1)" in page and "Say why the flip does not matter." in page
    assert "12345" not in page and "SECRET_EXPECTED" not in page and "LEAKED" not in page
    assert "<script>" not in page  # the student's markdown is escaped
    assert f"data:image/png;base64,{PNG}" in page  # their figure, inline: renders offline
    assert "http://" not in page and "https://" not in page
    passed = feedback_html(store, course.alice, template_notebook())
    assert "Total: <strong>5</strong> of 10" in passed and "Hint:" not in passed


def test_feedback_leaves_out_a_hidden_test_cell_the_submission_holds(graded) -> None:
    course, store = graded
    nb = nbformat.read(course.bob, as_version=4)
    leaked = template_notebook().cells[2]
    nb.cells.insert(2, leaked)  # a release that shipped the hidden test
    nb.cells.insert(3, nbformat.v4.new_code_cell(HIDDEN_SOURCE, metadata=leaked.metadata))
    nbformat.write(nb, course.bob)
    assert "12345" not in feedback_html(store, course.bob, template_notebook())


def test_feedback_command_writes_one_page_per_submission(graded, tmp_path: Path) -> None:
    course, _ = graded
    out = tmp_path / "feedback"
    args = ["grade", "feedback", "--db", str(course.db), "--template", str(course.templates)]
    assert main([*args, "--out", str(out)]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html")) == [
        "alice/t1.html",
        "bob/t1.html",
    ]


def test_lms_canvas_and_moodle(graded) -> None:
    course, store = graded
    store.set_mark(course.alice, item_id(store, "q1", "reason"), True)
    roster = read_roster(
        "folder,name,id,sis_user_id,sis_login_id,section,email\n"
        "alice,Alice Doe,101,S1,adoe,A,alice@uni.edu\n"
        "erin,Erin Roe,105,S5,eroe,B,erin@uni.edu\n"
    )
    canvas = export_lms(store.totals(), roster, "canvas", "Assignment 1 (77)")
    assert canvas.text.splitlines() == [
        "Student,ID,SIS User ID,SIS Login ID,Section,Assignment 1 (77)",
        "Alice Doe,101,S1,adoe,A,7",
        "Erin Roe,105,S5,eroe,B,",
    ]
    assert canvas.students_without_submission == ["erin"]
    assert canvas.submissions_without_student == [course.bob]
    moodle = export_lms(store.totals(), roster, "moodle", "Assignment 1", moodle_id="email")
    assert moodle.text.splitlines() == [
        "email,Assignment 1",
        "alice@uni.edu,7",
        "erin@uni.edu,",
    ]
    with pytest.raises(ValueError, match="idnumber"):
        export_lms(store.totals(), roster, "moodle", "A1", moodle_id="idnumber")


def test_lms_roster_needs_unique_folders() -> None:
    with pytest.raises(ValueError, match="more than once: a"):
        read_roster("folder,email\na,x@y\na,z@y\n")


def test_lms_command_lists_the_unmatched(graded, tmp_path: Path, capsys) -> None:
    course, _ = graded
    roster = tmp_path / "roster.csv"
    roster.write_text("folder,id\nalice,101\n")
    out = tmp_path / "canvas.csv"
    args = ["grade", "lms", "canvas", "--db", str(course.db), "--roster", str(roster)]
    assert main([*args, "--assignment", "A1", "--out", str(out)]) == 1
    assert out.read_text().splitlines()[1] == ",101,,,,5"
    assert f"not in the roster (not in the file): {course.bob}" in capsys.readouterr().out


@pytest.fixture
def server(graded) -> Iterator[tuple[Class, GradingServer]]:
    """The grading server on a free port, in a thread."""
    course, _ = graded
    running = GradingServer(course.db, 0, grader="tester")
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield course, running
    running.shutdown()
    running.server_close()


def request(url: str, data: dict | None = None, token: str = "") -> tuple[int, object]:
    """GET (or POST ``data``) and decode the JSON answer."""
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"X-Grade-Token": token})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_server_api_marks_need_the_token(server) -> None:
    course, running = server
    status, questions = request(running.url + "api/questions")
    assert status == 200 and [q["id"] for q in questions] == ["q1", "q2"]
    status, view = request(running.url + "api/question?id=q1")
    assert "&lt;script&gt;" in json.dumps(view)  # bob's answer, escaped
    item = view["items"][0]["id"]
    mark = {"submission": course.alice, "item": item, "on": True}
    assert request(running.url + "api/mark", mark)[0] == 403
    assert request(running.url + "api/mark", mark, token=running.token)[0] == 200
    _, totals = request(running.url + "api/totals")
    alice = next(t for t in totals if t["submission"] == course.alice)
    assert alice["total"] == 7 and alice["manual_points"] == 2
    grader = sqlite3.connect(course.db).execute("SELECT grader FROM marks").fetchone()[0]
    assert grader == "tester"
    with urllib.request.urlopen(running.url, timeout=10) as page:
        html = page.read().decode()
    assert running.token in html
    assert 'src="http' not in html and 'href="http' not in html  # nothing from a CDN
    with urllib.request.urlopen(running.url + "mathjax/MathJax.js", timeout=10) as mathjax:
        assert mathjax.status == 200  # served here, offline
    assert request(running.url + "mathjax/../../../etc/passwd")[0] == 404


def test_release_ships_no_rubric() -> None:
    student = student_notebook(template_notebook())
    assert all("rubric" not in cell.metadata.get("course", {}) for cell in student.cells)


def test_graders_writing_at_once_lose_nothing(graded) -> None:
    course, store = graded
    items = [item_id(store, "q1", "reason"), item_id(store, "q1", "example")]
    errors: list[BaseException] = []

    def grade(submission: str, item: int) -> None:
        mine = Store(course.db)
        try:
            for turn in range(40):  # ends "on": 40 toggles from off
                mine.set_mark(submission, item, turn % 2 == 0)
                mine.set_note(submission, "q1", f"turn {turn}", grader=submission)
        except BaseException as exc:  # a "database is locked" would land here
            errors.append(exc)
        finally:
            mine.close()

    threads = [
        threading.Thread(target=grade, args=(s, i))
        for s in (course.alice, course.bob)
        for i in items
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.manual_points(course.alice) == 0 and store.manual_points(course.bob) == 0
    assert {a["comment"] for a in store.answers("q1")} == {"turn 39"}


def test_cli_load_and_scores_round_trip(tmp_path: Path, capsys) -> None:
    course = make_class(tmp_path)
    db = ["--db", str(tmp_path / "cli.sqlite")]
    load = ["grade", "load", *db, "--gradebook", str(course.gradebook)]
    assert main([*load, "--template", str(course.templates)]) == 0
    out = capsys.readouterr().out
    assert "2 submissions, 2 questions" in out and "not loaded: " in out and "dave" in out
    scores = tmp_path / "scores.csv"
    assert main(["grade", "scores-export", *db, str(scores)]) == 0
    text = scores.read_text().replace(",q1,,0,", ",q1,reason,2,", 1)
    scores.write_text(text)
    assert main(["grade", "scores-import", *db, str(scores)]) == 0
    assert main(["grade", "scores-export", *db, str(scores)]) == 0
    assert scores.read_text() == text
    scores.write_text(text.replace("reason", "nonsense"))
    assert main(["grade", "scores-import", *db, str(scores)]) == 2
    assert "nothing imported" in capsys.readouterr().err


def test_progress_counts_items_and_nothing_applies(graded) -> None:
    course, store = graded
    progress = {q["id"]: q["marked"] for q in store.questions()}
    assert progress == {"q1": 0, "q2": 0}
    store.set_mark(course.alice, item_id(store, "q1", "reason"), True)
    store.set_note(course.bob, "q1", "")  # graded: nothing applies
    assert {q["id"]: q["marked"] for q in store.questions()} == {"q1": 2, "q2": 0}
    assert [a["graded"] for a in store.answers("q2")] == [False, False]
