"""Progress bars leave a static final state (text and HTML) in place of the widget."""

from __future__ import annotations

import io

import pytest
from tqdm.notebook import tqdm_notebook
from tqdm.std import tqdm

from course_utils import progress


class FakeHandle:
    """Stands in for IPython's DisplayHandle: records what the display was updated to."""

    def __init__(self, shown: object) -> None:
        self.shown = shown
        self.updates: list[dict[str, str]] = []

    def update(self, bundle: dict[str, str], raw: bool = False) -> None:
        assert raw, "a mime bundle is sent raw"
        self.updates.append(bundle)


@pytest.fixture
def handles(monkeypatch: pytest.MonkeyPatch) -> list[FakeHandle]:
    made: list[FakeHandle] = []

    def fake_display(obj: object, display_id: bool = False) -> FakeHandle:
        assert display_id, "the widget must be shown with a display id to be replaced"
        made.append(FakeHandle(obj))
        return made[-1]

    monkeypatch.setattr(progress, "display", fake_display)
    return made


def test_finished_bar_is_replaced_by_its_final_state(handles: list[FakeHandle]) -> None:
    with progress.StaticNotebookBar(total=55, desc="epoch 1/2") as bar:
        for _ in range(55):
            bar.update()
        bar.set_postfix(val_acc="0.9000")
    (handle,) = handles
    assert handle.shown is bar.container, "the live widget is shown while it runs"
    (final,) = handle.updates
    assert final["text/plain"].startswith("epoch 1/2: 100%|")
    assert "55/55" in final["text/plain"] and "val_acc=0.9000" in final["text/plain"]
    assert '<progress value="55" max="55"' in final["text/html"]
    assert "#17702c" in final["text/html"], "a finished bar is green"
    assert "<script" not in final["text/html"]


def test_interrupted_bar_keeps_where_it_stopped(handles: list[FakeHandle]) -> None:
    with pytest.raises(KeyboardInterrupt), progress.StaticNotebookBar(total=10) as bar:
        bar.update(4)
        raise KeyboardInterrupt
    (final,) = handles[0].updates
    assert "40%|" in final["text/plain"] and "4/10" in final["text/plain"]
    assert "#b3261e" in final["text/html"], "a bar that stopped short is red"


def test_bar_without_total_and_closing_twice(handles: list[FakeHandle]) -> None:
    bar = progress.StaticNotebookBar(desc="runs")
    bar.update(3)
    bar.close()
    bar.close()
    (final,) = handles[0].updates
    assert final["text/plain"].startswith("runs: 3")
    assert "<progress" not in final["text/html"]


def test_bar_that_does_not_stay_leaves_nothing(handles: list[FakeHandle]) -> None:
    with progress.StaticNotebookBar(total=2, leave=False) as bar:
        bar.update(2)
    assert handles[0].updates == [{"text/plain": ""}]


def test_disabled_bar_shows_nothing(handles: list[FakeHandle]) -> None:
    with progress.StaticNotebookBar(total=2, disable=True) as bar:
        bar.update(2)
    assert handles == []


def test_progress_bar_picks_the_kind_that_fits(
    monkeypatch: pytest.MonkeyPatch, handles: list[FakeHandle]
) -> None:
    text_bar = progress.progress_bar(total=1, file=io.StringIO())
    assert type(text_bar) is not progress.StaticNotebookBar and isinstance(text_bar, tqdm)
    text_bar.close()
    monkeypatch.setattr(progress, "auto_tqdm", tqdm_notebook)  # as in a Jupyter kernel
    notebook_bar = progress.progress_bar(total=1)
    assert isinstance(notebook_bar, progress.StaticNotebookBar)
    notebook_bar.close()
