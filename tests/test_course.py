"""The `course` CLI: `run` builds the gallery, `refresh` keeps only checked outputs."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_utils.instructor import cli, run
from course_utils.instructor.notebook_io import CHECK_TAG, find_run_record, parse_record_line
from course_utils.instructor.refresh import strip_outputs

RECORD = (
    "RUN RECORD | profile=quick | data=embedded (OFFLINE: mnist not in /x/data and not "
    "downloadable) | device=cpu | seed=0 | torch=2.14.1 | torchvision=0.29.1 | "
    "python=3.11.7"
)
# A 1x1 PNG, enough to be an image output.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000100ffff03000006000557bfabd40000000049454e44ae426082"
    )
).decode()


def checked(source: str) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata={"tags": [CHECK_TAG]})


def write(path: Path, *cells: nbformat.NotebookNode) -> Path:
    nbformat.write(new_notebook(cells=list(cells)), path)
    return path


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "local.txt").write_text("found in the notebook's folder")
    write(
        folder / "01_good.ipynb",
        new_markdown_cell("# Good *notebook*\n\nThe output size is $(W - F + 2P)/S + 1$."),
        new_code_cell(f"print({RECORD!r})"),
        new_code_cell(
            "from course_utils.progress import progress_bar\n"
            "with progress_bar(total=55, desc='epoch 1/1') as bar:\n"
            "    bar.update(55)"
        ),
        new_code_cell(
            "print('test_accuracy_percent: 91.5')\nprint('epochs: 5')",
            metadata={"tags": ["result"]},
        ),
        new_code_cell(
            "import os\n"
            "print('profile env:', os.environ.get('COURSE_PROFILE', 'unset'))\n"
            "print('live plot:', os.environ.get('COURSE_LIVE_PLOT'))\n"
            "print(open('local.txt').read())"
        ),
    )
    write(
        folder / "02_bad.ipynb",
        new_markdown_cell("# Bad"),
        new_code_cell("print('partial output')"),
        new_code_cell("raise ValueError('boom happened\\nsecond line')"),
        new_code_cell("print('never runs')"),
    )
    return folder


def test_run_builds_gallery_and_reports_failure(
    notebooks: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    out = tmp_path / "build"
    code = cli.main(["run", str(notebooks), "--out", str(out), "--timeout", "120"])
    printed = capsys.readouterr().out
    assert code != 0

    for name in ("01_good", "02_bad"):
        assert (out / "notebooks" / f"{name}.ipynb").is_file()
        assert "<html" in (out / "notebooks" / f"{name}.html").read_text()
    index = (out / "index.html").read_text()
    assert 'href="notebooks/01_good.html"' in index
    assert 'href="notebooks/02_bad.html"' in index
    assert "<td>quick</td>" in index and "<td>cpu</td>" in index
    assert "embedded (OFFLINE: mnist not in /x/data and not downloadable)" in index

    summary = printed[printed.index("notebook  ") :]
    good_row = next(line for line in summary.splitlines() if line.startswith("01_good"))
    bad_row = next(line for line in summary.splitlines() if line.startswith("02_bad"))
    assert "quick" in good_row and "cpu" in good_row and " ok" in good_row
    assert "FAILED (ValueError: boom happened)" in bad_row
    assert "second line" not in bad_row
    assert "1 passed, 1 failed" in printed

    good = nbformat.read(out / "notebooks" / "01_good.ipynb", as_version=4)
    assert find_run_record(good)["profile"] == "quick"
    text = "".join(o.get("text", "") for c in good.cells for o in c.get("outputs", []))
    assert "profile env: unset" in text  # `course run` does not force a profile
    assert "live plot: 0" in text  # static figures
    assert "found in the notebook's folder" in text  # kernel runs in the notebook's folder

    bar = good.cells[2].outputs[0]  # the progress bar's final state, not a widget
    assert (
        bar["data"]["text/plain"].startswith("epoch 1/1: 100%|")
        and "55/55" in bar["data"]["text/plain"]
    )
    assert "application/vnd.jupyter.widget-view+json" not in bar["data"]

    page = (out / "notebooks" / "01_good.html").read_text()
    assert "<title>Good notebook</title>" in page
    assert 'src="../assets/mathjax/MathJax.js?config=' in page
    assert (out / "assets" / "mathjax" / "MathJax.js").is_file()
    assert "cdnjs" not in page and "unpkg" not in page, "every script is local"
    assert re.search(r'<progress max="55"[^>]* value="55"', page), "the bar's static HTML"
    assert "Good notebook" in index and "<li>test_accuracy_percent: 91.5</li>" in index

    summary = json.loads((out / "results.json").read_text())
    good_entry, bad_entry = summary["notebooks"]
    assert good_entry["results"] == {"test_accuracy_percent": "91.5", "epochs": "5"}
    assert good_entry["profile"] == "quick" and good_entry["status"] == "ok"
    assert bad_entry["status"] == "failed" and bad_entry["results"] == {}
    markdown = (out / "results.md").read_text()
    assert "## Good notebook (`01_good.ipynb`)" in markdown
    assert "| test_accuracy_percent | 91.5 |" in markdown

    bad = nbformat.read(out / "notebooks" / "02_bad.ipynb", as_version=4)
    assert bad.cells[1].outputs[0]["text"] == "partial output\n"
    assert bad.cells[2].outputs[0]["output_type"] == "error"
    assert bad.cells[3].outputs == []


def test_run_without_notebooks_fails(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["run", str(tmp_path), "--out", str(tmp_path / "build")]) == 2
    assert "no notebooks" in capsys.readouterr().err


def test_refresh_keeps_checked_text_only_and_spares_broken_notebooks(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good = write(
        tmp_path / "a.ipynb",
        new_code_cell("x = 2", metadata={"tags": ["parameters"]}),
        checked("import os\nprint(os.environ['COURSE_PROFILE'])\nx * 21"),
        new_code_cell(
            f"from IPython.display import display\nprint('noise')\n"
            f"display({{'image/png': {PNG!r}}}, raw=True)"
        ),
    )
    bad = write(tmp_path / "b.ipynb", new_code_cell("1 / 0"))
    bad_before = bad.read_bytes()

    assert cli.main(["refresh", str(tmp_path), "--timeout", "120"]) == 1
    assert "1 refreshed, 1 failed" in capsys.readouterr().out
    assert bad.read_bytes() == bad_before

    nb = nbformat.read(good, as_version=4)
    params, check, plot = nb.cells
    assert params.outputs == [] and params.execution_count is None
    assert plot.outputs == [] and plot.execution_count is None
    assert check.execution_count is not None  # nbval only compares cells with one
    assert [o["output_type"] for o in check.outputs] == ["stream", "execute_result"]
    assert check.outputs[0]["text"] == "smoke\n"
    assert check.outputs[1]["data"] == {"text/plain": "42"}
    assert all("execution" not in c.metadata for c in nb.cells)


def test_strip_outputs() -> None:
    stream = new_output("stream", name="stdout", text="shape (1, 28, 28)\n")
    figure = new_output(
        "display_data", data={"image/png": PNG, "text/plain": "<Figure size 640x480 with 1 Axes>"}
    )
    image_only = new_output("display_data", data={"image/png": PNG})
    table = new_output(
        "execute_result",
        execution_count=3,
        data={"text/html": "<table/>", "text/plain": "   a\n0  1"},
    )
    widget = new_output(
        "display_data",
        data={
            "application/vnd.jupyter.widget-view+json": {
                "model_id": "abc",
                "version_major": 2,
                "version_minor": 0,
            },
            "text/plain": "IntSlider(value=0)",
        },
    )
    error = new_output("error", ename="ValueError", evalue="x", traceback=[])
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Title"),
            new_code_cell("a", execution_count=1, outputs=[stream, image_only]),
            new_code_cell(
                "b",
                execution_count=2,
                metadata={"tags": [CHECK_TAG]},
                outputs=[stream, figure, image_only, table, widget, error],
            ),
        ]
    )
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.cells[2].metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00"}

    result = strip_outputs(nb)
    assert "widgets" not in result.metadata
    unchecked, check = result.cells[1], result.cells[2]
    assert unchecked.outputs == [] and unchecked.execution_count is None
    assert check.execution_count == 2
    assert "execution" not in check.metadata
    assert [o["output_type"] for o in check.outputs] == [
        "stream",
        "display_data",
        "execute_result",
        "display_data",
    ]
    for output in check.outputs[1:]:
        assert list(output["data"]) == ["text/plain"]
    assert check.outputs[2]["execution_count"] == 3
    nbformat.validate(result)


def test_parse_record_line() -> None:
    fields = parse_record_line(RECORD)
    assert fields["profile"] == "quick"
    assert fields["data"] == "embedded (OFFLINE: mnist not in /x/data and not downloadable)"
    assert fields["device"] == "cpu"
    assert fields["python"] == "3.11.7"


def test_find_run_record_is_empty_without_a_record() -> None:
    nb = new_notebook(cells=[new_code_cell("1", outputs=[new_output("stream", text="hi\n")])])
    assert find_run_record(nb) == {}


def test_readme_takes_its_results_from_the_build(tmp_path: Path) -> None:
    from course_utils.instructor.run import README_BEGIN, README_END, results_summary

    summary = results_summary(
        [
            run.NotebookResult(
                "a1.ipynb", "notebooks/a1.html", 3.0, title="Conv", results={"acc": "0.9"}
            )
        ]
    )
    (tmp_path / "results.json").write_text(json.dumps(summary))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Pack\n\n## Results\n{README_BEGIN}\nhand-typed\n{README_END}\nend\n")

    args = ["readme", "--results", str(tmp_path / "results.json"), "--readme", str(readme)]
    assert cli.main(args) == 0
    text = readme.read_text()
    assert "hand-typed" not in text and "| acc | 0.9 |" in text and "#### Conv" in text
    assert text.startswith("# Pack\n") and text.endswith("end\n")

    readme.write_text("no markers\n")
    assert cli.main(args) == 1
    assert cli.main(["readme", "--results", str(tmp_path / "none.json")]) == 2
