"""The grading page: a local web server over the grading database.

Standard library only (:mod:`http.server`), one page with its script and style inline, so
it works offline and nothing is fetched from a CDN. It listens on ``127.0.0.1`` only. Each
request opens its own connection to the database, so several browsers (and several
servers on one course folder) grade at once; see :mod:`course_utils.instructor.grade.store`.

Every change is a ``POST`` carrying the page's token in an ``X-Grade-Token`` header: a web
page from elsewhere that the grader has open cannot post to this server (it cannot read
the token, and a custom header needs a CORS preflight this server never grants).

API (JSON): ``GET /api/questions``, ``GET /api/question?id=ID``, ``GET /api/totals``;
``POST /api/mark`` ``{submission, item, on}``, ``POST /api/note``
``{submission, question, comment}``, ``POST /api/item`` ``{question, key, points,
description}``.
"""

from __future__ import annotations

import json
import mimetypes
import secrets
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import jinja2

from course_utils.instructor.grade.markup import markdown_html
from course_utils.instructor.grade.store import Store
from course_utils.instructor.run import MATHJAX_CONFIG

PAGE = jinja2.Environment(
    loader=jinja2.PackageLoader("course_utils.instructor.grade", "."),
    autoescape=True,
).get_template("page.html.j2")
# Inline script and style, PNG data URLs, this server: nothing else loads, whatever a
# student's answer holds.
CONTENT_POLICY = "default-src 'self' 'unsafe-inline' data:"
MAX_BODY = 1 << 20  # a comment or a rubric item; nothing posted is larger
# Maths in questions and answers is typeset by the MathJax that jupyter-server-mathjax
# ships (instructor extra), served from here under /mathjax/; without it, raw LaTeX shows.
_MATHJAX_SPEC = find_spec("jupyter_server_mathjax")
MATHJAX_ROOT = (
    Path(_MATHJAX_SPEC.origin).parent / "static"
    if _MATHJAX_SPEC is not None and _MATHJAX_SPEC.origin is not None
    else None
)


def mathjax_file(path: str) -> Path | None:
    """The MathJax file a ``/mathjax/...`` URL path names; ``None`` outside MathJax's folder.

    >>> mathjax_file("/mathjax/../../secrets.txt") is None
    True
    """
    if MATHJAX_ROOT is None:
        return None
    wanted = (MATHJAX_ROOT / path.removeprefix("/mathjax/")).resolve()
    inside = wanted.is_relative_to(MATHJAX_ROOT.resolve())
    return wanted if inside and wanted.is_file() else None


def question_view(store: Store, question: str) -> dict[str, Any]:
    """Everything the page shows for one question, Markdown rendered."""
    row = store.db.execute("SELECT * FROM questions WHERE id=?", (question,)).fetchone()
    if row is None:
        raise KeyError(question)
    items = [dict(item) for item in store.items(question)]
    answers = store.answers(question)
    for answer in answers:
        answer["html"] = markdown_html(answer.pop("text")) if answer.get("text") else ""
        answer["points"] = store.manual_points(answer["name"], question)
    return {
        "id": row["id"],
        "template": row["template"],
        "position": row["position"],
        "prompt": markdown_html(row["prompt"]),
        "reference": markdown_html(row["reference"]),
        "items": items,
        "answers": answers,
    }


def totals_view(store: Store) -> list[dict[str, Any]]:
    """The totals table: one row per submission."""
    return [{**vars(t), "total": t.total} for t in store.totals()]


class GradingHandler(BaseHTTPRequestHandler):
    """Serves the page and its API; the server carries the database path and token."""

    server: GradingServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a grader's terminal is not a request log."""

    def send_json(self, data: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        """Send ``data`` as a JSON response."""
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def send_file(self, path: Path | None) -> None:
        """Send a static file, or 404."""
        if path is None:
            self.send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)
            return
        body = path.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", mimetypes.guess_type(path.name)[0] or "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=86400")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """The page, or one of the read-only API calls."""
        url = urlparse(self.path)
        store = Store(self.server.db_path)
        try:
            if url.path == "/":
                mathjax = f"/mathjax/MathJax.js?config={MATHJAX_CONFIG}" if MATHJAX_ROOT else ""
                body = PAGE.render(
                    token=self.server.token, grader=self.server.grader, mathjax=mathjax
                ).encode()
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Security-Policy", CONTENT_POLICY)
                self.end_headers()
                self.wfile.write(body)
            elif url.path.startswith("/mathjax/"):
                self.send_file(mathjax_file(url.path))
            elif url.path == "/api/questions":
                self.send_json([dict(q) for q in store.questions()])
            elif url.path == "/api/question":
                question = parse_qs(url.query).get("id", [""])[0]
                self.send_json(question_view(store, question))
            elif url.path == "/api/totals":
                self.send_json(totals_view(store))
            else:
                self.send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)
        except KeyError as exc:
            self.send_json({"error": f"no such question: {exc}"}, HTTPStatus.NOT_FOUND)
        finally:
            store.close()

    def do_POST(self) -> None:
        """A change: a mark, a note or a rubric item."""
        if not secrets.compare_digest(self.headers.get("X-Grade-Token", ""), self.server.token):
            self.send_json({"error": "missing or wrong token"}, HTTPStatus.FORBIDDEN)
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_json({"error": "request too large"}, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return
        store = Store(self.server.db_path)
        grader = self.server.grader
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/api/mark":
                store.set_mark(data["submission"], int(data["item"]), bool(data["on"]), grader)
            elif self.path == "/api/note":
                store.set_note(data["submission"], data["question"], data["comment"], None, grader)
            elif self.path == "/api/item":
                store.save_item(
                    data["question"], data["key"], float(data["points"]), data["description"]
                )
            else:
                self.send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)
                return
            self.send_json({"ok": True})
        except (KeyError, ValueError, TypeError) as exc:
            self.send_json({"error": f"bad request: {exc}"}, HTTPStatus.BAD_REQUEST)
        finally:
            store.close()


class GradingServer(ThreadingHTTPServer):
    """An HTTP server bound to one grading database, with a fresh token per start."""

    daemon_threads = True

    def __init__(self, db_path: Path, port: int = 0, grader: str = ""):
        self.db_path, self.grader, self.token = Path(db_path), grader, secrets.token_urlsafe(16)
        Store(self.db_path).close()  # create it now: a wrong path fails before serving
        super().__init__(("127.0.0.1", port), GradingHandler)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/``."""
        return f"http://127.0.0.1:{self.server_address[1]}/"
