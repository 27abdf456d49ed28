"""The HTML report in a real headless Chromium (Debian's chromium + chromedriver, Selenium).

Skips where no browser is installed, except in CI (CI=true), where `make test` installs one
and a missing browser is a failure.

The page is looked at as a user at a 1366x768 screen would: the first screen (a screenshot,
and the DOM's geometry) shows what is not ok with its why; the table filters by several
verdicts at once and from the badges; declared and undeclared errors look different; an
ERROR's drill-down shows the traceback and the run's own log lines; a 10,000-row page loads,
filters and sorts in seconds; case text is never executed.
"""

from __future__ import annotations

import dataclasses
import os
import time

import pytest
from conftest import ROOT, run_cli, write_case

from parity.report import browser

if not all(browser.executables()):
    if os.environ.get("CI"):
        pytest.fail("CI: chromium and chromedriver must be installed (make browser)", pytrace=False)
    pytest.skip("no chromium/chromedriver here (make browser installs them)", allow_module_level=True)

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

ENV = {"PARITY_TEST_OPS": "1"}  # the fault op: an ERROR with a real traceback
WIDTH, HEIGHT = 1366, 768


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    cases = d / "cases"
    write_case(cases, "xss", """
        name: "<script>alert(1)</script>"
        op: lrn
        description: "<img src=x onerror=alert(2)>"
        params: {size: 3}
        inputs: {x: {shape: [1, 3, 2, 2], dtype: float32}}
        frameworks: [torch]
    """)
    write_case(cases, "fail", """
        name: undeclared-gap
        op: lrn
        params: {size: 2}
        native: {mindspore: {depth_radius: 1, bias: 1.0, alpha: 1.0e-4, beta: 0.75}}
        inputs: {x: {shape: [1, 4, 2, 2], dtype: float32}}
        frameworks: [torch, mindspore]
    """)
    write_case(cases, "raises", """
        name: torch-raises
        op: fault
        params: {mode: ok}
        native: {torch: {mode: raise}}
        inputs: {x: {shape: [2, 3], dtype: float32, seed: 1}}
        frameworks: [torch, tensorflow]
    """)
    write_case(cases, "raises-declared", """
        name: torch-raises-declared
        op: fault
        params: {mode: ok}
        native: {torch: {mode: raise}}
        inputs: {x: {shape: [2, 3], dtype: float32, seed: 2}}
        frameworks: [torch]
        known:
          - framework: torch
            status: ERROR
            reason: the test op raises on purpose
    """)
    r = run_cli("run", ROOT / "cases/lrn/mindspore-doc-example.yaml", ROOT / "cases/batch_norm/keras-biased-running-var.yaml",
                ROOT / "cases/group_norm/random-4d.yaml", cases, report_dir=d / "reports", env=ENV)
    assert r.code == 1, r.stdout + r.stderr
    return r


@pytest.fixture(scope="module")
def driver():
    d = browser.driver()
    browser.viewport(d, WIDTH, HEIGHT)
    yield d
    d.quit()


@pytest.fixture
def page(driver, report):
    """The report, freshly loaded (no filter, no drill-down open) at 1366x768."""
    driver.get((report.report_dir / "parity.html").as_uri())
    driver.get_log("browser")  # what an earlier page logged
    return driver


def js(page, script, *args):
    return page.execute_script(script, *args)


def view_rows(page) -> list[dict]:
    """The rows the table shows after its filters, in order (the virtualized table has only
    those in view in the DOM)."""
    return js(page, "var p = window.parityReport; return p.view().map(function (i) { return p.row(i); });")


def dom_rows(page):
    return page.find_elements(By.CSS_SELECTOR, "#comparisons tr.cmp")


def no_horizontal_scroll(page) -> bool:
    return js(page, "return document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def severe(page):
    return [e for e in page.get_log("browser") if e["level"] == "SEVERE"]


def test_loads_without_console_errors(page, report):
    assert severe(page) == []
    assert page.title == "parity report"
    assert js(page, "return window.parityReport.rows") == len(report.json["comparisons"])
    assert len(view_rows(page)) == len(report.json["comparisons"])


def test_first_screen_shows_what_is_not_ok_and_why(page, report, tmp_path):
    page.save_screenshot(str(tmp_path / "first-screen.png"))
    assert js(page, "return [window.innerWidth, window.innerHeight]") == [WIDTH, HEIGHT]
    bad = [r for r in report.json["comparisons"] if not r["ok"]]
    assert {(r["case"], r["comparison"], r["verdict"]) for r in bad} == {
        ("undeclared-gap", "torch vs mindspore", "FAIL"), ("torch-raises", "torch vs reference", "ERROR")}
    section = page.find_element(By.ID, "not-ok")
    items = section.find_elements(By.CSS_SELECTOR, ".bad-row")
    assert len(items) == len(bad)
    # the whole section, every failing row with its why included, is on the first screen
    for e in [section] + items:
        rect = js(page, "return arguments[0].getBoundingClientRect().toJSON()", e)
        assert 0 <= rect["top"] and rect["bottom"] <= HEIGHT, (e.text, rect)
    text = section.text
    assert "why: different computations: window: torch [c-1, c] (2 channels), mindspore [c-1, c+1] (3 channels)" in text
    assert "why: RuntimeError: injected failure: the framework raised" in text
    assert "no declaration covers it" in text and "fail.yaml:1" in text and "raises.yaml:1" in text
    assert page.find_element(By.ID, "status").text.startswith("FAILED: 2 of")
    assert no_horizontal_scroll(page)


def test_no_horizontal_scroll_with_drill_downs_and_cases_open(page):
    for i, r in enumerate(view_rows(page)):
        if r["verdict"] != "PASS":
            js(page, "window.parityReport.toggle(arguments[0], true)", i)
    for b in page.find_elements(By.CSS_SELECTOR, "#not-ok button.open"):
        b.click()
    js(page, "document.querySelectorAll('details').forEach(function (d) { d.open = true; })")
    assert no_horizontal_scroll(page)
    assert severe(page) == []


def test_rows_are_one_line_high(page):
    heights = js(page, "return Array.prototype.map.call(document.querySelectorAll('#comparisons tr.cmp'),"
                       " function (tr) { return tr.getBoundingClientRect().height; })")
    assert heights and max(heights) <= 30


def test_several_verdicts_at_once(page, report):
    total = len(report.json["comparisons"])
    for key in ("FAIL", "KNOWN_GAP"):
        page.find_element(By.CSS_SELECTOR, f"#verdict-chips [data-key='{key}']").click()
    shown = view_rows(page)
    expected = [r for r in report.json["comparisons"] if r["verdict"] in ("FAIL", "KNOWN_GAP")]
    assert len(shown) == len(expected) > 1
    assert {r["key"] for r in shown} == {"FAIL", "KNOWN_GAP"}
    assert {tr.get_attribute("data-key") for tr in dom_rows(page)} == {"FAIL", "KNOWN_GAP"}
    assert page.find_element(By.ID, "shown").text == f"{len(expected)} of {total} comparisons shown"
    Select(page.find_element(By.CSS_SELECTOR, "select[data-filter='framework']")).select_by_value("tensorflow")
    assert shown and all("tensorflow" in r["comparison"] for r in view_rows(page))
    Select(page.find_element(By.CSS_SELECTOR, "select[data-filter='framework']")).select_by_value("")
    page.find_element(By.CSS_SELECTOR, "#verdict-chips [data-keys='notok']").click()
    assert {(r["case"], r["verdict"]) for r in view_rows(page)} == {("undeclared-gap", "FAIL"), ("torch-raises", "ERROR")}
    page.find_element(By.CSS_SELECTOR, "#verdict-chips [data-keys='']").click()
    assert len(view_rows(page)) == total


def test_badges_filter(page, report):
    badge = page.find_element(By.CSS_SELECTOR, "#summary [data-key='FAIL']")
    assert badge.text == "1 FAIL"
    badge.click()
    assert badge.get_attribute("aria-pressed") == "true"
    assert [r["key"] for r in view_rows(page)] == ["FAIL"]
    page.find_element(By.CSS_SELECTOR, "#summary [data-key='ERROR (declared)']").click()
    assert sorted(r["key"] for r in view_rows(page)) == ["ERROR (declared)", "FAIL"]
    chip = page.find_element(By.CSS_SELECTOR, "#verdict-chips [data-key='FAIL']")
    assert chip.get_attribute("aria-pressed") == "true"  # the badges and the chips are one filter
    badge.click()
    assert [r["key"] for r in view_rows(page)] == ["ERROR (declared)"]


def test_declared_and_undeclared_errors_look_different(page, report):
    declared = page.find_element(By.CSS_SELECTOR, "#summary [data-key='ERROR (declared)']")
    undeclared = page.find_element(By.CSS_SELECTOR, "#summary [data-key='ERROR']")
    assert declared.text == "1 ERROR (declared)" and undeclared.text == "1 ERROR"

    def look(e):
        return js(page, "var s = getComputedStyle(arguments[0]);"
                        "return [s.borderTopStyle, s.backgroundImage, s.backgroundColor, s.fontWeight];", e)

    assert look(declared) != look(undeclared)
    assert look(declared)[0] == "dashed" and look(undeclared)[0] == "solid"
    rows = {r["case"]: r for r in view_rows(page) if r["verdict"] == "ERROR"}
    assert rows["torch-raises"]["key"] == "ERROR" and not rows["torch-raises"]["ok"]
    assert rows["torch-raises-declared"]["key"] == "ERROR (declared)" and rows["torch-raises-declared"]["ok"]
    # in the table too: the verdict cell says so and is styled apart
    cells = {tr.find_element(By.CSS_SELECTOR, "td.name").text: tr.find_element(By.CSS_SELECTOR, "td.verdict span")
             for tr in dom_rows(page) if tr.get_attribute("data-verdict") == "ERROR"}
    assert cells["torch-raises-declared"].text == "ERROR (declared)" and cells["torch-raises"].text == "ERROR"
    assert look(cells["torch-raises-declared"]) != look(cells["torch-raises"])


def open_drill(page, case, comparison):
    i = next(k for k, r in enumerate(js(page, "var p = window.parityReport; var out = [];"
                                              "for (var i = 0; i < p.rows; i++) out.push(p.row(i)); return out;"))
             if r["case"] == case and r["comparison"] == comparison)
    js(page, "window.parityReport.scrollToRow(arguments[0], false)", i)
    row = page.find_element(By.ID, f"r{i}")
    row.click()
    drill = page.find_element(By.ID, f"drill-r{i}")
    assert drill.is_displayed()
    return row, drill


def test_error_drill_down_shows_the_traceback_and_log(page, report):
    run = report.run("torch-raises", "torch")
    assert run["status"] == "ERROR" and "RuntimeError: injected failure" in run["traceback"]
    _, drill = open_drill(page, "torch-raises", "torch vs reference")
    tb = drill.find_element(By.CSS_SELECTOR, "pre.traceback").text
    assert tb.startswith("Traceback (most recent call last):") and "injected failure: the framework raised" in tb
    assert "_testing.py" in tb
    assert "this run's log lines" in drill.text
    assert drill.find_element(By.CSS_SELECTOR, "pre.log").text == (run["log"] or
                                                                   "(the worker wrote nothing to its log during this run)")
    # in the not-ok section, in place
    page.find_element(By.CSS_SELECTOR, "#not-ok .bad-row[data-verdict='ERROR'] button.open").click()
    panel = page.find_element(By.CSS_SELECTOR, "#not-ok .bad-row[data-verdict='ERROR'] .panel")
    assert "injected failure: the framework raised" in panel.find_element(By.CSS_SELECTOR, "pre.traceback").text
    assert severe(page) == []


def test_error_drill_down_shows_the_runs_own_log_lines(report, driver, tmp_path, monkeypatch):
    """Log lines as a framework writes them (the fault op writes none): the stored run, with
    lines added, through the real renderer."""
    import parity
    from parity.report import html

    monkeypatch.setenv("PARITY_TEST_OPS", "1")
    rep = parity.load(report.report_dir / "results", quiet=True)
    c = rep.case("torch-raises")
    lines = "W0000 00:00:1.5 framework warning before the failure\n<b>E</b> kernel said: no & not markup"
    c.results[:] = [dataclasses.replace(r, log=lines) if r.status == "ERROR" else r for r in c.results]
    out = tmp_path / "parity.html"
    out.write_text(html.render(rep))
    driver.get(out.as_uri())
    _, drill = open_drill(driver, "torch-raises", "torch vs reference")
    assert drill.find_element(By.CSS_SELECTOR, "pre.log").text == lines
    assert "this run's log lines (2)" in drill.text
    assert "injected failure" in drill.find_element(By.CSS_SELECTOR, "pre.traceback").text
    assert drill.find_elements(By.CSS_SELECTOR, "b") == []


def test_drill_down_names_the_frameworks(page):
    _, drill = open_drill(page, "lrn/mindspore-doc-example", "torch vs mindspore")
    heads = [th.text for th in drill.find_elements(By.CSS_SELECTOR, "table.worst th")]
    assert heads == ["index", "torch", "mindspore", "|torch − mindspore|"]
    assert "histogram of |torch − mindspore|" in drill.text


def test_drill_down_opens_with_histogram(page):
    row, drill = open_drill(page, "lrn/mindspore-doc-example", "torch vs mindspore")
    text = drill.text
    assert "worst elements" in text and "semantic part" in text
    assert "window: [c-1, c] (2 channels) vs [c-1, c+1] (3 channels)" in text
    bars = js(page, "var c = arguments[0].querySelector('canvas.histogram'); var ch = Chart.getChart(c);"
                    "return ch ? ch.data.datasets[0].data : null;", drill)
    assert bars and sum(bars) == 4  # the 4 elements of the doc example
    assert drill.find_elements(By.CSS_SELECTOR, "canvas.per-channel")
    drill_id, row_id = drill.get_attribute("id"), row.get_attribute("id")
    row.click()  # closes it (the table renders its rows again: find them again)
    assert not page.find_elements(By.ID, drill_id) and page.find_element(By.ID, row_id)
    # a PASS row's drill-down: its worst element (and histogram, where the comparison kept one)
    # travel in its table row
    _, drill = open_drill(page, "group_norm/random-4d", "torch vs tensorflow")
    assert "worst element" in drill.text and "numeric part, torch" in drill.text
    heads = [th.text for th in drill.find_elements(By.CSS_SELECTOR, "table.worst th")]
    assert heads == ["index", "torch", "tensorflow", "|torch − tensorflow|"]
    bars = js(page, "var c = arguments[0].querySelector('canvas.histogram'); var ch = c && Chart.getChart(c);"
                    "return ch ? ch.data.datasets[0].data : null;", drill)
    assert bars is None or sum(bars) == 2 * 12 * 9 * 11
    assert severe(page) == []


def test_ulp_noise_is_marked(page, report):
    rows = js(page, "var p = window.parityReport; var out = [];"
                    "for (var i = 0; i < p.rows; i++) out.push(p.row(i)); return out;")
    noisy = [i for i, r in enumerate(rows) if r["ulp_noise"]]
    assert noisy, "no comparison whose max ULP sits near zero"
    i = noisy[0]
    js(page, "window.parityReport.scrollToRow(arguments[0], false)", i)
    cell = page.find_elements(By.CSS_SELECTOR, f"#r{i} td.num")[2]
    assert "ulp-noise" in cell.get_attribute("class")
    assert "not information" in cell.get_attribute("title")
    assert cell.text == rows[i]["ulp_text"] != str(rows[i]["max_ulp"])
    legend = page.find_element(By.CSS_SELECTOR, "#table .legend").text
    assert "atol/rtol" in legend and "not information" in legend and "16×" in legend


def test_sort_by_max_abs(page):
    header = page.find_element(By.CSS_SELECTOR, "#comparisons th[data-key='max_abs']")
    header.click()  # descending first
    numbers = [r["max_abs"] for r in view_rows(page) if isinstance(r["max_abs"], (int, float))]
    assert numbers == sorted(numbers, reverse=True) and numbers[0] > 1e-3
    first = dom_rows(page)[0].find_elements(By.CSS_SELECTOR, "td")[4].get_attribute("title")
    assert float(first) == pytest.approx(numbers[0], rel=1e-6)
    header.click()
    numbers = [r["max_abs"] for r in view_rows(page) if isinstance(r["max_abs"], (int, float))]
    assert numbers == sorted(numbers)


def test_why_is_shown_once(page):
    rows = [tr.find_elements(By.CSS_SELECTOR, "td")[-1] for tr in dom_rows(page)
            if tr.find_element(By.CSS_SELECTOR, "td.name").text == "lrn/mindspore-doc-example"]
    texts = [td.text for td in rows]
    own_call = [t for t in texts if t.startswith("compared with the reference of this framework's own call")]
    assert len(own_call) == 1 and "↑ as above" in texts  # tensorflow's and mindspore's are the same text


def test_matrix_filters_and_environment(page, report):
    cells = page.find_elements(By.CSS_SELECTOR, "table.op-matrix[data-op='lrn'] td.v-KNOWN_GAP")
    assert cells
    cell = next(c for c in cells if {c.get_attribute("data-a"), c.get_attribute("data-b")} == {"torch", "tensorflow"})
    cell.click()
    shown = view_rows(page)
    assert shown and {(r["case"], r["comparison"]) for r in shown} == {("lrn/mindspore-doc-example", "torch vs tensorflow")}
    fail = page.find_element(By.CSS_SELECTOR, "table.op-matrix[data-op='lrn'] td.v-FAIL[data-a='torch'][data-b='mindspore']")
    assert "!1" in fail.text  # the undeclared gap: one comparison not ok
    assert page.find_element(By.ID, "pair-filter").is_displayed()
    env = page.find_element(By.ID, "environment")
    assert env.is_displayed()
    body = page.find_element(By.TAG_NAME, "body").text
    for word in ("2.13.0", "2.21.0", "2.10.0", "threads", "numpy"):
        assert word in body


def test_case_text_is_not_executed(page):
    with pytest.raises(NoAlertPresentException):
        _ = page.switch_to.alert.text
    names = [e.text for e in page.find_elements(By.CSS_SELECTOR, "details.case .cname")]
    assert "<script>alert(1)</script>" in names
    i = names.index("<script>alert(1)</script>")
    js(page, "window.parityReport.openCase(arguments[0], true)", i)
    body = page.find_element(By.CSS_SELECTOR, f"#case-{i} .case-body")
    assert "<img src=x onerror=alert(2)>" in body.text
    assert page.find_elements(By.CSS_SELECTOR, "img") == []
    with pytest.raises(NoAlertPresentException):
        _ = page.switch_to.alert.text
    assert "runs" in body.text and "torch" in body.text


# --- scale: a 10,000-row page ----------------------------------------------------------------

def replicated(rep, rows: int):
    """The report's cases again and again under new names, until it has ``rows`` comparisons."""
    from parity.report import CaseReport

    cases, i = [], 0
    while sum(len(c.rows) for c in cases) < rows:
        for c in rep.cases:
            case = dataclasses.replace(c.case, name=f"{c.case.name}#{i:05d}")
            cases.append(CaseReport(case, [dataclasses.replace(r, case=case) for r in c.results],
                                    [dataclasses.replace(r, case=case) for r in c.refs],
                                    [dataclasses.replace(row, case=case) for row in c.rows], c.inputs))
            i += 1
    return dataclasses.replace(rep, cases=cases)


def test_10000_rows_load_filter_and_sort_in_seconds(report, driver, tmp_path, monkeypatch, record_property):
    import parity
    from parity.report import html

    monkeypatch.setenv("PARITY_TEST_OPS", "1")
    big = replicated(parity.load(report.report_dir / "results", quiet=True), 10_000)
    n = len(big.rows)
    t0 = time.perf_counter()
    text = html.render(big)
    render_s = time.perf_counter() - t0
    out = tmp_path / "parity.html"
    out.write_text(text)
    size = len(text.encode())
    t0 = time.perf_counter()
    driver.get(out.as_uri())
    load_s = time.perf_counter() - t0
    assert js(driver, "return window.parityReport.rows") == n >= 10_000
    assert len(dom_rows(driver)) < 200  # virtualized: only the rows in view are in the DOM
    filter_ms = js(driver, """
        var t = performance.now();
        window.parityReport.setVerdicts(["KNOWN_GAP", "FAIL"]);
        var s = document.querySelector("input[data-filter='text']");
        s.value = "doc-example"; s.dispatchEvent(new Event("input"));
        return performance.now() - t;""")
    shown = view_rows(driver)
    assert shown and all(r["key"] in ("KNOWN_GAP", "FAIL") and "doc-example" in r["case"] for r in shown)
    sort_ms = js(driver, """
        window.parityReport.setVerdicts([]);
        var s = document.querySelector("input[data-filter='text']"); s.value = ""; s.dispatchEvent(new Event("input"));
        var t = performance.now();
        document.querySelector("#comparisons th[data-key='max_abs']").click();
        return performance.now() - t;""")
    scroll_ms = js(driver, """
        var t = performance.now();
        var v = window.parityReport.view();
        window.parityReport.scrollToRow(v[v.length - 1], true);
        return performance.now() - t;""")
    last = js(driver, "var v = window.parityReport.view(); return v[v.length - 1];")
    assert driver.find_element(By.ID, f"drill-r{last}").is_displayed()
    assert severe(driver) == []
    timings = {"comparisons": n, "bytes": size, "bytes_per_comparison": round(size / n), "render_s": round(render_s, 2),
               "load_s": round(load_s, 2), "filter_ms": round(filter_ms), "sort_ms": round(sort_ms),
               "scroll_to_end_ms": round(scroll_ms)}
    for k, v in timings.items():
        record_property(k, v)
    print("10,000-row page:", timings)
    assert load_s < 20 and filter_ms < 20_000 and sort_ms < 20_000 and scroll_ms < 20_000
    assert size / n <= 1024
