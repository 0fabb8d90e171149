"""The explorer wires its sliders to the static figure and survives impossible settings."""

import matplotlib

matplotlib.use("Agg")

from course_utils import widgets  # noqa: E402


def formula(W, F, S, P):
    return (W - F + 2 * P) // S + 1


def test_explorer_has_the_four_sliders_and_draws_the_figure(monkeypatch):
    drawn = []
    monkeypatch.setattr(widgets.viz, "plot_filter_positions",
                        lambda W, F, S, P, output_size: drawn.append((W, F, S, P, output_size)))
    explorer = widgets.conv_arithmetic_explorer(formula)
    sliders = {c.description: c for c in explorer.children[:-1]}
    assert sorted(sliders) == ["F", "P", "S", "W"]
    sliders["W"].value = 12
    assert drawn[-1] == (12, 3, 2, 1, formula(12, 3, 2, 1))


def test_explorer_explains_a_filter_wider_than_the_input(capsys, monkeypatch):
    monkeypatch.setattr(widgets.viz, "plot_filter_positions", lambda *a, **k: None)
    explorer = widgets.conv_arithmetic_explorer(formula)
    sliders = {c.description: c for c in explorer.children[:-1]}
    sliders["P"].value = 0
    sliders["W"].value = 2
    sliders["F"].value = 5
    assert "wider than the padded input (2)" in capsys.readouterr().out
