"""The HTML leaderboard in a real browser: Debian's chromium driven headless by selenium through
chromium-driver (``.ci/run`` installs both where apt-get is available; the test skips, saying
which is missing, elsewhere). Selenium never downloads a driver here: the driver's path is
given and SE_OFFLINE is set.

Loaded from a file:// URL, the page must request nothing (no CSS, JS or font from elsewhere);
the first click on a metric's header sorts best first by the metric's direction, the second
reverses, missing cells stay last; the header and the row-name column stay in view when the
table scrolls; the best value of each column is highlighted; the signatures sit in a closed
<details> footer. A screenshot is saved under the test's tmp dir (its path is printed)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cmp_fixtures import cmp_results, cmp_table, lower_is_better  # noqa: F401 (pytest fixtures)

from uarbench.compare.formats import write_table


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _driver_path() -> str | None:
    found = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return found if Path(found).is_file() else None


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install selenium; it is in the test extra)"
    if _chromium() is None:
        return "chromium not installed (Debian: apt-get install chromium)"
    if _driver_path() is None:
        return "chromedriver not installed (Debian: apt-get install chromium-driver)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    os.environ["SE_OFFLINE"] = "true"            # never let selenium-manager download anything
    options = webdriver.ChromeOptions()
    options.binary_location = _chromium()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=900,420", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=_driver_path()), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(cmp_table, lower_is_better, tmp_path_factory):
    """The leaderboard with BLEU-2 read as a lower-is-better metric (both directions)."""
    table = lower_is_better(cmp_table, "BLEU-2")
    path = tmp_path_factory.mktemp("leaderboard") / "leaderboard.html"
    write_table(table, "html", path)
    return table, path


def _order(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelector('table.lb').tBodies[0].rows)"
        ".map(function (tr) { return tr.cells[0].dataset.v; });")


def _expected(table, key: str, current: list[str], descending: bool) -> list[str]:
    """The order the page must show: a stable sort of the current order, missing last."""
    means = {n: table.cell(n, key).mean for n in current}
    have = [n for n in current if means[n] is not None]
    return (sorted(have, key=lambda n: means[n], reverse=descending)
            + [n for n in current if means[n] is None])


def _header(driver, text: str):
    from selenium.webdriver.common.by import By
    return next(th for th in driver.find_elements(By.CSS_SELECTOR, "table.lb thead th")
                if th.text.split(" \u25b2")[0].split(" \u25bc")[0] == text)


def test_first_click_sorts_best_first_second_click_reverses(browser, page):
    table, path = page
    browser.get(path.as_uri())
    start = _order(browser)
    assert start == [r.name for r in table.rows if r.kind == "measured"]
    # BLEU-4: higher is better -> highest first; "broken" (missing) last
    _header(browser, "BLEU-4 ↑").click()
    first = _order(browser)
    assert first == _expected(table, "BLEU-4", start, descending=True)
    assert first[0] in ("good", "copy") and first[-1] == "broken"
    assert _header(browser, "BLEU-4 ↑").get_attribute("aria-sort") == "descending"
    _header(browser, "BLEU-4 ↑").click()
    second = _order(browser)
    assert second == _expected(table, "BLEU-4", first, descending=False)
    assert second[0] == "constant" and second[-1] == "broken"
    # BLEU-2 read as lower-is-better: the first click puts the lowest (best) first
    _header(browser, "BLEU-2 ↓").click()
    assert _order(browser) == _expected(table, "BLEU-2", second, descending=False)
    assert _order(browser)[0] == "constant"
    assert _header(browser, "BLEU-4 ↑").get_attribute("aria-sort") is None
    # ROUGE-L: the row missing it in one seed ("partial") and the failed run sort last
    _header(browser, "ROUGE-L ↑").click()
    assert _order(browser)[-2:] == ["partial", "broken"]
    _header(browser, "ROUGE-L ↑").click()
    assert _order(browser)[-2:] == ["partial", "broken"]


def test_page_requests_nothing_external(browser, page):
    _, path = page
    browser.get(path.as_uri())
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; });")
    assert resources == []
    sheets = browser.execute_script(
        "return Array.from(document.styleSheets).map(function (s) { return s.href; });")
    assert sheets and all(href is None for href in sheets)          # inline styles only
    assert browser.execute_script(
        "return document.querySelectorAll('[src], link[href], img, iframe').length;") == 0
    assert "http://" not in browser.page_source and "https://" not in browser.page_source


def test_header_and_row_names_stay_in_view_when_scrolling(browser, page):
    _, path = page
    browser.set_window_size(900, 420)
    browser.get(path.as_uri())
    before = browser.execute_script("""
        var w = document.querySelector('.wrap');
        return [w.scrollWidth > w.clientWidth, w.scrollHeight > w.clientHeight];""")
    assert before == [True, True], "the table must overflow its box for this test"
    pos = browser.execute_script("""
        var w = document.querySelector('.wrap');
        w.scrollLeft = 400; w.scrollTop = 120;
        var box = w.getBoundingClientRect();
        var name = document.querySelector('table.lb tbody tr:last-child td').getBoundingClientRect();
        var head = document.querySelector('table.lb thead th:nth-child(5)').getBoundingClientRect();
        var corner = document.querySelector('table.lb thead th').getBoundingClientRect();
        return {left: box.left, top: box.top, nameLeft: name.left, headTop: head.top,
                cornerLeft: corner.left, cornerTop: corner.top,
                scrolled: [w.scrollLeft, w.scrollTop]};""")
    assert pos["scrolled"][0] > 0 and pos["scrolled"][1] > 0
    assert abs(pos["nameLeft"] - pos["left"]) <= 2          # row names pinned to the left
    assert abs(pos["headTop"] - pos["top"]) <= 2            # header pinned to the top
    assert abs(pos["cornerLeft"] - pos["left"]) <= 2 and abs(pos["cornerTop"] - pos["top"]) <= 2


def test_best_values_are_highlighted_and_signatures_fold_away(browser, page, tmp_path):
    from selenium.webdriver.common.by import By
    _, path = page
    browser.set_window_size(1400, 900)
    browser.get(path.as_uri())
    heads = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "table.lb thead th")]
    best = browser.execute_script("""
        var out = {};
        document.querySelectorAll('table.lb tbody tr').forEach(function (tr) {
          Array.from(tr.cells).forEach(function (td, i) {
            if (td.classList.contains('best')) {
              (out[i] = out[i] || []).push(tr.cells[0].dataset.v);
              out['bg' + i] = getComputedStyle(td).backgroundColor;
            }
          });
        });
        return out;""")
    col = heads.index("BLEU-4 ↑")
    assert sorted(best[str(col)]) == ["copy", "good"]
    assert sorted(best[str(heads.index("BLEU-2 ↓"))]) == ["constant"]
    assert best[f"bg{col}"] not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
    details = browser.find_element(By.CSS_SELECTOR, "footer details")
    signature = details.find_element(By.TAG_NAME, "code")
    assert details.get_attribute("open") is None and not signature.is_displayed()
    details.find_element(By.TAG_NAME, "summary").click()
    assert signature.is_displayed() and "BLEU-" in signature.text
    details.find_element(By.TAG_NAME, "summary").click()
    _header(browser, "BLEU-4 ↑").click()
    browser.execute_script("window.scrollTo(0, 0);")
    shot = tmp_path / "leaderboard.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"leaderboard screenshot: {shot}")
