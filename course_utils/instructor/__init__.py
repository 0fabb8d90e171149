"""The instructor tools: run the pack, refresh stored outputs, build the release, grade.

Layered on the student side (:mod:`course_utils`), which never imports it; the student
release does not ship it. Modules, from the base up:

- :mod:`~course_utils.instructor.notebook_io`: finding, reading and cleaning notebooks;
- :mod:`~course_utils.instructor.run` (``course run`` and the gallery) and
  :mod:`~course_utils.instructor.refresh` (``course refresh``);
- :mod:`~course_utils.instructor.release` (``course release``);
- :mod:`~course_utils.instructor.verify` (``course verify``);
- :mod:`~course_utils.instructor.cli`: the ``course`` command that ties them together.
"""
