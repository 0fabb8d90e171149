"""The results a template's run reads from other notebooks, supplied by the grader.

Assignment 3, task 1 compares its network with Assignment 2's best
(``results.require_result("a2_best", run)``). In the sandbox there is no such file, and
the grade of a submission must not depend on the student's own Assignment 2: the grader
supplies the course's result. For each result a template reads (a name in
:data:`course_utils.results.PRODUCERS` that its code loads), :class:`ResultSupply`

- reuses ``results/NAME.json`` next to the templates when it fits the grading run: the
  grading profile, the sandbox's data source and the current data code and producing
  notebook (:func:`course_utils.results.stale_reason` decides);
- else runs the producing template (the solution notebook) in the sandbox, in the
  grading profile, and reads the file its run wrote before the kernel ends;

once per grading run, and hands it to every sandboxed run of that template as a
read-only file in its working folder (``Template.inputs``). When neither works, the
error says why and what to do.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path

from course_utils import results
from course_utils.instructor.verify.batch import submission_code
from course_utils.instructor.verify.compare import graded_here
from course_utils.instructor.verify.grader import GradingSession
from course_utils.instructor.verify.proxy import Channel, StudentError
from course_utils.instructor.verify.sandbox import run_sandboxed
from course_utils.instructor.verify.template import Template, align, load_templates
from course_utils.instructor.verify.verdict import Limits

# The sandbox has no network and an empty data folder, so every dataset in it is the
# embedded stand-in (config.resolve_data_source): a result must have been made on it.
SANDBOX_DATA_KIND = "embedded"
READS_RESULT = re.compile(r"""results\.(?:require|load)_result\(\s*["'](\w+)["']""")


class MissingPrerequisite(RuntimeError):
    """A result a template's run reads could be neither reused nor made."""


def required_results(template: Template) -> list[str]:
    """The course results (:data:`~course_utils.results.PRODUCERS`) the template's code reads.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     'a2 = results.require_result("a2_best", run)\\nresults.load_result("mine")')])
    >>> required_results(Template(Path("a3_t1.ipynb"), nb))
    ['a2_best']
    """
    names = (
        match[1]
        for cell in template.nb.cells
        if cell.cell_type == "code"
        for match in READS_RESULT.finditer(cell.source)
    )
    return [name for name in dict.fromkeys(names) if name in results.PRODUCERS]


class ResultSupply:
    """Finds or makes each course result once per grading run (see the module docstring).

    ``make(producer, name)`` returns the text of result ``name`` made by running the
    producing template; by default :func:`produce` in the sandbox with ``limits``.
    """

    def __init__(
        self,
        limits: Limits,
        unsafe: bool = False,
        make: Callable[[Template, str], str] | None = None,
    ):
        self.limits = limits
        self.make = make or (lambda producer, name: produce(producer, name, limits, unsafe))
        self.texts: dict[str, str] = {}

    def supply(self, template: Template) -> Template:
        """``template`` with the results its run reads among its inputs."""
        names = required_results(template)
        if not names:
            return template
        inputs = dict(template.inputs)
        for name in names:
            if name not in self.texts:
                self.texts[name] = self.find_or_make(name, template.path.parent)
            inputs[results.result_path(name).as_posix()] = self.texts[name]
        return dataclasses.replace(template, inputs=inputs)

    def find_or_make(self, name: str, folder: Path) -> str:
        """The text of result ``name``: the stored one in ``folder/results`` where it
        fits the grading run, else one made by the producing template in ``folder``."""
        producer_path = folder / results.PRODUCERS[name]
        stored = results.result_path(name, folder / results.DEFAULT_FOLDER)
        stale = results.stale_reason(
            name, self.limits.profile, SANDBOX_DATA_KIND, stored.parent, folder
        )
        if stale is None:
            print(f"Using {stored} for the templates that read {name!r}", flush=True)
            return stored.read_text(encoding="utf-8")
        if not producer_path.is_file():
            raise MissingPrerequisite(
                f"the result {name!r} that a template reads cannot be supplied: {stale}, "
                f"and {producer_path.name}, which makes it, is not among the templates. "
                f"Put {producer_path.name} in {folder}, or a {name}.json made in the "
                f"{self.limits.profile} profile on embedded data in {stored.parent}"
            )
        print(
            f"Making the result {name!r} ({stale}): running {producer_path.name} in the "
            f"sandbox, {self.limits.profile} profile",
            flush=True,
        )
        [producer] = load_templates(producer_path)
        return self.make(producer, name)


class ResultReader:
    """The producer's grading session, which at its end also reads the result's file
    through the kernel (the sandbox's files are gone once the kernel ends)."""

    def __init__(self, session: GradingSession, channel: Channel, path: str):
        self.session, self.channel, self.path = session, channel, path
        self.text: str | None = None
        self.problem = "the run did not finish"

    def after_cell(self, index: int) -> None:
        self.session.after_cell(index)

    def finish(self) -> None:
        self.session.finish()
        try:
            text = self.channel.ask(read_file_request(self.path))
        except StudentError as exc:
            self.problem = str(exc)
            return
        if isinstance(text, str):
            self.text = text


def produce(producer: Template, name: str, limits: Limits, unsafe: bool = False) -> str:
    """Run the ``producer`` template in the sandbox, as its reference run is made, and
    return the text of the ``results/NAME.json`` it wrote (read through the kernel
    before it ends). Raises :class:`MissingPrerequisite` when the run or the file fails.
    """
    to_run = align(producer, producer.nb).run
    path = results.result_path(name).as_posix()
    readers: list[ResultReader] = []

    def grading(channel: Channel) -> ResultReader:
        session = GradingSession(
            producer.nb, to_run, graded_here(producer), submission_code(producer.nb), channel
        )
        readers.append(ResultReader(session, channel, path))
        return readers[-1]

    run = run_sandboxed(to_run, limits, unsafe=unsafe, grading=grading, inputs=producer.inputs)
    text = readers[0].text if readers else None
    if run.error or text is None:
        why = run.error or (readers[0].problem if readers else "the kernel did not start")
        raise MissingPrerequisite(
            f"{producer.path.name} did not make {path} in the sandbox ({why}); run "
            f"`course run` on it to see the failing cell"
        )
    json.loads(text)  # the producer's own file: malformed JSON is a bug to hear of here
    return text


def read_file_request(path: str) -> dict:
    """The kernel request that returns the text of ``path`` in its working folder.

    >>> read_file_request("results/a2_best.json")["expr"]
    "open('results/a2_best.json', encoding='utf-8').read()"
    """
    return {"op": "eval", "expr": f"open({path!r}, encoding='utf-8').read()", "vars": {"dict": []}}
