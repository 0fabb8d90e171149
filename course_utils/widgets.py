"""Interactive ipywidgets explorers.

Widgets need a live kernel, so every explorer has a static figure in ``viz`` that the
notebook draws right after it at fixed values, for exported and graded notebooks.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets
import matplotlib.pyplot as plt

from course_utils import viz


def conv_arithmetic_explorer(output_size: Callable[[int, int, int, int], int]) -> ipywidgets.Widget:
    """Sliders for W, F, S and P that redraw :func:`viz.plot_filter_positions`.

    ``output_size(W, F, S, P)`` is the student's formula; the figure shows where the
    filter lands, so a wrong formula is visible as a wrong count of positions.
    The static counterpart is ``viz.plot_filter_positions(W, F, S, P, output_size=...)``.

    In a notebook cell (a widget needs a running kernel to be useful)::

        conv_arithmetic_explorer(lambda W, F, S, P: (W - F + 2 * P) // S + 1)
    """

    def draw(W: int, F: int, S: int, P: int) -> None:
        if F > W + 2 * P:
            print(f"F = {F} is wider than the padded input ({W + 2 * P}): no position fits.")
            return
        viz.plot_filter_positions(W, F, S, P, output_size=output_size(W, F, S, P))
        plt.show()

    return ipywidgets.interactive(
        draw,
        W=ipywidgets.IntSlider(value=7, min=1, max=32, description="W"),
        F=ipywidgets.IntSlider(value=3, min=1, max=11, description="F"),
        S=ipywidgets.IntSlider(value=2, min=1, max=5, description="S"),
        P=ipywidgets.IntSlider(value=1, min=0, max=5, description="P"),
    )
