"""Shared test set-up: a non-interactive plotting backend and no figure left open."""

from collections.abc import Iterator

import matplotlib

# Before pyplot is imported anywhere: tests never open windows.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    """Close every figure a test opened, so figures do not pile up across tests."""
    yield
    plt.close("all")
