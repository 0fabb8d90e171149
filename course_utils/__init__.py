"""Helpers for the CNN course pack: data, training, inspection, checks and plots.

Each module has one job; import the one you need::

    from course_utils import config, data, train, viz
"""

__version__ = "0.1.0"
