"""``python -m course_utils.instructor.verify``: the worker inside the sandbox."""

import sys

from course_utils.instructor.verify.worker import worker

sys.exit(worker())
