"""The grading page in a real browser: headless Chromium (Debian's) driven by Selenium.

Grades two questions with the keyboard and the mouse, then reads the totals table. Skipped
where Chromium, its driver or Selenium is missing (``apt-get install chromium
chromium-driver``; Selenium is in the ``dev`` extra). With ``COURSE_GRADE_SCREENSHOT=PATH``
it also saves a picture of the grading page (the instructor's guide shows it).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from course_utils.instructor.grade.server import GradingServer
from tests.test_grade import make_class

pytest.importorskip("selenium")
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None, reason="needs Debian's chromium and chromium-driver"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A headless Chromium, closed after the test."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def focused_name(driver: WebDriver) -> str:
    """The student name (names shown) in the focused answer's heading, points removed."""
    heading = driver.find_element(By.CSS_SELECTOR, "section.answer.focused h3")
    points = heading.find_element(By.CSS_SELECTOR, ".points").text
    return heading.text.removeprefix(points).strip()


def typeset(driver: WebDriver) -> bool:
    """Whether MathJax has typeset the question: no raw LaTeX left in it."""
    return "\\(" not in driver.find_element(By.CSS_SELECTOR, "main .box").text


def points_shown(driver: WebDriver, index: int) -> str:
    """What answer ``index``'s heading shows: its points, or "ungraded"."""
    return str(
        driver.find_element(By.CSS_SELECTOR, f'section.answer[data-index="{index}"] .points').text
    )


def item_box(driver: WebDriver, index: int, item: int) -> WebElement:
    """The checkbox of rubric item ``item`` (0-based) in answer ``index``."""
    return driver.find_elements(
        By.CSS_SELECTOR, f'section.answer[data-index="{index}"] input[type=checkbox]'
    )[item]


def test_grade_two_questions_keyboard_and_mouse(tmp_path: Path, browser: WebDriver) -> None:
    course = make_class(tmp_path)
    server = GradingServer(course.db, 0, grader="browser test")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = browser
    # Each change re-renders the question: an element read mid-render is stale, read again.
    wait = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,))
    try:
        driver.get(server.url)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "section.answer.focused"))
        wait.until(typeset)  # maths in the question, by the MathJax served here (offline)
        body = driver.find_element(By.TAG_NAME, "body")
        anonymous = focused_name(driver)
        assert anonymous.startswith("Student ") and "alice" not in anonymous
        body.send_keys("a")  # names shown
        wait.until(lambda d: focused_name(d) in ("alice", "bob"))
        manual = {"alice": 0.0, "bob": 0.0}

        # Question 1: key 1 gives the first answer "reason" (2 points); j, then a click
        # gives the second answer "example" (1 point); c, a comment, Esc.
        first = focused_name(driver)
        body.send_keys("1")
        wait.until(lambda d: item_box(d, 0, 0).is_selected())
        manual[first] += 2
        body.send_keys("j")
        second = focused_name(driver)
        assert second != first
        item_box(driver, 1, 1).click()
        wait.until(lambda d: points_shown(d, 1) == "1 pts")  # saved, and counted
        manual[second] += 1
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys("c")
        comment = driver.switch_to.active_element
        comment.send_keys("Say why the flip does not matter.", Keys.ESCAPE)

        # Question 2 (n): keys 1 and 2 give the first answer both items (1 + 1 points).
        body.send_keys("n")
        wait.until(lambda d: "Question 2 of 2" in d.find_element(By.TAG_NAME, "h2").text)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "section.answer.focused"))
        third = focused_name(driver)
        body.send_keys("1")
        wait.until(lambda d: item_box(d, 0, 0).is_selected())
        body.send_keys("2")
        wait.until(lambda d: item_box(d, 0, 1).is_selected())
        manual[third] += 2
        body.send_keys("j", "0")  # the other answer: graded, nothing applies
        wait.until(lambda d: points_shown(d, 1) == "0 pts")
        progress = 'button[data-question="q2"] .progress'  # marked / answers
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, progress).text == "2/2")
        if os.environ.get("COURSE_GRADE_SCREENSHOT"):
            body.send_keys("p")  # the first question, with its marks, for the guide
            wait.until(lambda d: "Question 1 of 2" in d.find_element(By.TAG_NAME, "h2").text)
            wait.until(lambda d: item_box(d, 0, 0).is_selected())
            body.send_keys("a")  # anonymous, as a grader works
            wait.until(lambda d: focused_name(d).startswith("Student "))
            wait.until(typeset)
            driver.save_screenshot(os.environ["COURSE_GRADE_SCREENSHOT"])
            body.send_keys("a")

        driver.find_element(By.ID, "show-totals").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#totals tr")) == 3)
        rows = [
            [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, "#totals tr")[1:]
        ]
        auto = {"alice": 5.0, "bob": 0.0}  # from the gradebook: alice passed both checks
        assert {r[0]: (float(r[2]), float(r[3]), float(r[4]), float(r[5])) for r in rows} == {
            name: (auto[name], manual[name], auto[name] + manual[name], 10.0) for name in auto
        }
    finally:
        server.shutdown()
        server.server_close()
    comments = server_comments(course.db)
    assert comments == {"Say why the flip does not matter.", ""}  # "" from key 0


def server_comments(db: Path) -> set[str]:
    """The comments the page saved."""
    with sqlite3.connect(db) as connection:
        return {row[0] for row in connection.execute("SELECT comment FROM notes")}
