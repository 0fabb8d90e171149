"""Progress bars that still read right after the notebook is saved or exported.

In a Jupyter kernel ``tqdm.auto`` draws a widget. A saved notebook keeps only a
reference to the widget's model, so reopened (or exported to HTML) the bar reads "Error
displaying widget", and the text stored beside it is the bar's first state, ``0%``.
:func:`progress_bar` draws the same widget while it runs and, when the bar closes,
replaces its display with a static rendering of the final state: plain text
(``epoch 1/3: 100%|██████████| 55/55 [...]``) and a small HTML ``<progress>`` bar that
needs no script. Outside Jupyter (a terminal, pytest) it is tqdm's text bar.

    >>> with progress_bar(total=3, disable=True) as bar:
    ...     bar.update(3)
"""

from __future__ import annotations

import html
import re
from typing import Any

from IPython.display import display
from tqdm.auto import tqdm as auto_tqdm
from tqdm.notebook import tqdm_notebook
from tqdm.std import tqdm

__all__ = ["StaticNotebookBar", "progress_bar", "static_bundle"]

# Where tqdm marks the bar inside its formatted line (as tqdm.notebook does).
_BAR = "<bar/>"


def static_bundle(bar: tqdm) -> dict[str, str]:
    """Return the ``text/plain`` and ``text/html`` rendering of a bar's current state.

    The HTML uses a native ``<progress>`` element, so it needs no script and no widget
    state; a bar that stopped short of its total (an error, Ctrl-C) is drawn in red.

    >>> import io
    >>> bar = tqdm(total=4, desc="epoch 1/1", file=io.StringIO())
    >>> _ = bar.update(4)
    >>> bundle = static_bundle(bar)
    >>> bundle["text/plain"].startswith("epoch 1/1: 100%|")
    True
    >>> '<progress value="4" max="4"' in bundle["text/html"]
    True
    >>> bar.close()
    """
    state = bar.format_dict
    text = bar.format_meter(**state)
    state["bar_format"] = (state["bar_format"] or "{l_bar}{bar}{r_bar}").replace("{bar}", _BAR)
    marked = bar.format_meter(**state)
    if bar.total and _BAR in marked:
        left, right = re.split(r"\|?<bar/>\|?", marked, maxsplit=1)
        colour = "#b3261e" if bar.n < bar.total else "#17702c"
        drawn = (
            f'{html.escape(left.rstrip())} <progress value="{bar.n:g}" '
            f'max="{bar.total:g}" style="accent-color: {colour}; vertical-align: middle">'
            f"</progress> {html.escape(right.lstrip())}"
        )
    else:  # no total: tqdm prints a count and a rate only
        drawn = html.escape(text)
    return {
        "text/plain": text,
        "text/html": f'<div class="course-progress"><code>{drawn}</code></div>',
    }


class StaticNotebookBar(tqdm_notebook):
    """tqdm's notebook widget bar, replaced by :func:`static_bundle` when it closes.

    The widget is shown through a display handle (``display_id``); closing the bar
    updates that display with the static rendering and closes the widget, so that the
    saved notebook holds text and HTML instead of a widget reference. A bar made with
    ``leave=False`` leaves an empty display.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        show = kwargs.pop("display", True)
        super().__init__(*args, display=False, **kwargs)
        self._handle = None
        if show and not self.disable:
            self._handle = display(self.container, display_id=True)
            self.displayed = True

    def close(self) -> None:
        """Close the bar and leave its final state as static text and HTML."""
        if self.disable:  # closed already (tqdm disables a bar as it closes it)
            return
        super().close()
        if self._handle is not None:
            self._handle.update(static_bundle(self) if self.leave else {"text/plain": ""}, raw=True)
            self._handle = None
        self.container.close()


def progress_bar(*args: Any, **kwargs: Any) -> tqdm:
    """Return a progress bar: :class:`StaticNotebookBar` in Jupyter, a text bar elsewhere.

    Takes tqdm's arguments (``total``, ``desc``, ``unit``, ``disable``, ``leave``...).
    ``tqdm.auto`` decides which kind of bar fits where the code runs.

    >>> bar = progress_bar(total=2, disable=True)
    >>> _ = bar.update(2)
    >>> bar.close()
    """
    if issubclass(auto_tqdm, tqdm_notebook):
        return StaticNotebookBar(*args, **kwargs)
    return auto_tqdm(*args, **kwargs)
