"""Every lecture in JupyterLab, in a real browser, used the way a student uses it.

nbval (`make test`, which runs first) executes every lecture top to bottom and checks the
outputs' values; this test checks what nbval cannot see, without executing the lectures again:

* every lecture opens in JupyterLab with a running kernel;
* the cells its widgets need run from the notebook (the widget cells and the cells they read
  from, found by tools/notebook_slice.py), and no cell shows an error;
* every widget with a control is used as a student would (click a toggle button that is not
  selected, press the right arrow on a slider, pick the next option of a dropdown, click a
  button or a checkbox: the first control of each kind in the widget), and what it shows
  changes after each: the round trip browser -> kernel -> browser;
* one lecture per run goes through Run > Run All Cells instead: the one changed last (see
  ``run_all_lectures``); ``make browser-test`` does it for every lecture.

Screenshots of each lecture go to screenshots/ (see tests_browser/README.md).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "lectures").glob("*.ipynb"))
SCREENSHOTS = ROOT / "screenshots"

_spec = importlib.util.spec_from_file_location("notebook_slice", ROOT / "tools" / "notebook_slice.py")
notebook_slice = importlib.util.module_from_spec(_spec)
sys.modules["notebook_slice"] = notebook_slice
_spec.loader.exec_module(notebook_slice)

# Without checkpoints a lecture trains its encoders: lecture 01 took 609 s under nbclient on a
# 2-core AVX2 CPU (README, "How long a lecture takes"), so leave room for a live run; the
# same limit holds for one cell run on its own.
RUN_TIMEOUT_S = 1200
KERNEL_START_TIMEOUT_S = 120
WIDGET_TIMEOUT_S = 60
VIEWPORT = {"width": 1400, "height": 1000}
TALLEST_SCREENSHOT = 16000  # pixels; Chromium cannot capture much more in one image

# A lecture whose code uses these must show a widget that responds.
USES_WIDGETS = re.compile(r"^\s*(import ipywidgets|from ipywidgets|from sslteach\.(widgets|sphere_figures) |"
                          r"import sslteach\.(widgets|sphere_figures))", re.MULTILINE)

# Controls, in the order they are tried inside the first output that holds one of them;
# use_control says what a student does to each.
CONTROLS = [
    ("toggle button", ".widget-toggle-button"),
    ("slider", ".widget-slider .noUi-handle"),
    ("dropdown", ".widget-dropdown select"),
    ("button", "button.widget-button"),
    ("checkbox", ".widget-checkbox input"),
]

# Per code cell: its prompt and, per output, what the notebook model holds and how the page
# shows it. The DOM alone cannot tell an error from text written to stderr (both render as
# data-mime-type="application/vnd.jupyter.stderr"), so errors come from the model, which
# JupyterLab exposes as window.jupyterapp (--LabApp.expose_app_in_browser).
CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.map((cell, index) => ({cell, index}))
      .filter(({cell}) => cell.model.type === 'code').map(({cell, index}) => ({
    index,
    prompt: cell.node.querySelector('.jp-InputPrompt').textContent.trim(),
    source: cell.model.sharedModel.getSource().slice(0, 80),
    outputs: cell.outputArea.widgets.map((child, i) => {
      const output = cell.model.outputs.get(i).toJSON();
      const shown = child.node.querySelector('.jp-OutputArea-output');
      return {
        type: output.output_type,
        error: output.output_type === 'error' ? `${output.ename}: ${output.evalue}` : null,
        widget: 'application/vnd.jupyter.widget-view+json' in (output.data || {}),
        shown_as: shown ? (shown.dataset.mimeType || 'widget') : null,
        text: shown ? shown.textContent.slice(0, 200) : '',
      };
    }),
  }));
}"""

KERNEL_READY_JS = """() => {
  const session = window.jupyterapp.shell.currentWidget?.sessionContext;
  const kernel = session?.session?.kernel;
  return Boolean(session?.isReady && kernel && kernel.connectionStatus === 'connected'
                 && kernel.status === 'idle');
}"""

STATE_JS = """() => ({
  prompts: [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
    .map(prompt => prompt.textContent.trim()),
  kernel: document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator')
    ?.dataset.status ?? 'unknown',
})"""

# Run one cell as Run > Run Selected Cell does; -> true, false if the cell failed, or 'timeout'.
RUN_CELL_JS = """async ([index, timeoutMs]) => {
  const app = window.jupyterapp;
  const notebook = app.shell.currentWidget.content;
  notebook.activeCellIndex = index;
  notebook.deselectAll();
  const timeout = new Promise(resolve => setTimeout(() => resolve('timeout'), timeoutMs));
  return await Promise.race([app.commands.execute('notebook:run-cell'), timeout]);
}"""

# What a widget shows, leaving out its controls (a slider's readout changes without the kernel).
SNAPSHOT_JS = """area => ({
  images: [...area.querySelectorAll('img')].map(img => img.src),
  bars: [...area.querySelectorAll('.progress-bar')].map(bar => `${bar.style.width} ${bar.className}`),
  text: [...area.querySelectorAll('.widget-html-content, div.widget-label, .widget-output')]
    .map(element => element.textContent.trim()),
})"""


def uses_widgets(lecture: Path) -> bool:
    cells = json.loads(lecture.read_text())["cells"]
    return any(USES_WIDGETS.search("".join(c["source"])) for c in cells if c["cell_type"] == "code")


def wait_for(page, condition, timeout_s: float, what: str, poll_s: float = 0.5):
    """Poll condition() until it returns something truthy; fail with `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}; last state: "
                        f"{page.evaluate(STATE_JS)}", pytrace=False)
        page.wait_for_timeout(poll_s * 1000)


def open_lecture(page, lab, lecture: Path) -> None:
    # ?reset: a fresh workspace, not the tabs the previous lecture left open.
    page.goto(f"{lab.url}/lab/tree/{lecture.relative_to(ROOT).as_posix()}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=KERNEL_START_TIMEOUT_S * 1000)
    panels = page.locator(".jp-NotebookPanel").count()
    assert panels == 1, f"{panels} notebooks open; the workspace was not reset"
    # The execution indicator can read "idle" before the session has a kernel; Run All Cells
    # clicked then runs nothing (JupyterLab skips cells when there is no kernel), so wait on
    # the session itself.
    wait_for(page, lambda: page.evaluate(KERNEL_READY_JS), KERNEL_START_TIMEOUT_S,
             "the kernel to start (a 'Select Kernel' dialog means the kernelspec is missing)")
    page.evaluate("window.jupyterapp.shell.collapseLeft()")  # more room for the notebook


def menu(page, *path: str) -> None:
    """Click through the menu bar, e.g. menu(page, "Run", "Run All Cells")."""
    page.locator(".lm-MenuBar").get_by_role("menuitem", name=path[0], exact=True).click()
    for item in path[1:]:
        page.locator(".lm-Menu").get_by_role("menuitem", name=item, exact=True).click()


def clear_outputs(page) -> None:
    """Edit > Clear Outputs of All Cells: the outputs checked afterwards are this run's, not the
    file's. Clearing also resets the prompts to [ ]:."""
    menu(page, "Edit", "Clear Outputs of All Cells")
    assert set(page.evaluate(STATE_JS)["prompts"]) <= {"[ ]:"}, "clearing kept execution counts"


def run_all_cells(page) -> None:
    """Run > Run All Cells (after clear_outputs); wait until it is done."""
    menu(page, "Run", "Run All Cells")
    wait_for(page, lambda: set(page.evaluate(STATE_JS)["prompts"]) != {"[ ]:"}, KERNEL_START_TIMEOUT_S,
             "Run All Cells to start a cell (the first code cell should show [*]: or a number)")

    def finished():
        # Done when the kernel is idle and no cell waits ([*]:), twice in a row a second
        # apart; a cell that fails stops the run, leaving the cells after it at [ ]:.
        states = []
        for _ in range(2):
            states.append(page.evaluate(STATE_JS))
            page.wait_for_timeout(1000)
        if all(s["kernel"] == "idle" and "[*]:" not in s["prompts"]
               and set(s["prompts"]) != {"[ ]:"} for s in states):
            return True
        return None

    wait_for(page, finished, RUN_TIMEOUT_S, "Run All Cells to finish", poll_s=1)


def run_cells(page, indices: list[int]) -> None:
    """Run these cells one by one, as Run > Run Selected Cell does; stop at a cell that fails
    (check_cells then names its error)."""
    for index in indices:
        outcome = page.evaluate(RUN_CELL_JS, [index, RUN_TIMEOUT_S * 1000])
        if outcome == "timeout":
            pytest.fail(f"cell {index} did not finish in {RUN_TIMEOUT_S} s; last state: "
                        f"{page.evaluate(STATE_JS)}", pytrace=False)
        if outcome is not True:
            return


def run_all_lectures() -> set[str]:
    """The lectures (stems) that this run executes with Run All Cells; the others run only what
    their widgets need (nbval has run every lecture top to bottom already).

    $SSLTEACH_BROWSER_RUN_ALL: ``all`` (``make browser-test``), ``none``, or lecture stems
    separated by commas. By default: the lectures with uncommitted changes, else the one whose
    last commit is the newest, so the lecture a change touched is the one run in full.
    """
    stems = [lecture.stem for lecture in LECTURES]
    choice = os.environ.get("SSLTEACH_BROWSER_RUN_ALL", "").strip()
    if choice == "all":
        return set(stems)
    if choice == "none":
        return set()
    if choice:
        chosen = {name.strip() for name in choice.split(",") if name.strip()}
        unknown = chosen - set(stems)
        if unknown:
            raise ValueError(f"SSLTEACH_BROWSER_RUN_ALL names no lecture: {sorted(unknown)}; lectures: {stems}")
        return chosen

    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    try:
        changed = {Path(line[3:].strip('"')).stem for line in git("status", "--porcelain", "--", "lectures").splitlines()}
        if changed & set(stems):
            return changed & set(stems)
        last_commit = {lecture.stem: int(git("log", "-1", "--format=%ct", "--", str(lecture)) or 0)
                       for lecture in LECTURES}
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: run the first lecture
        return set(stems[:1])
    return {max(stems, key=lambda stem: (last_commit[stem], stem))}


RUN_ALL = run_all_lectures()


def screenshot_notebook(page, path: Path) -> None:
    """The whole notebook in one picture: a viewport as tall as the notebook's cells."""
    page.set_viewport_size(VIEWPORT)
    # The notebook scrolls inside its own panel (and pads its end by a screen's height, to
    # scroll past the last cell): measure from its top to the last cell's bottom.
    measure = """() => {
      const scroller = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
      scroller.scrollTop = 0;
      const cells = scroller.querySelectorAll('.jp-Cell');
      const bottom = cells[cells.length - 1].getBoundingClientRect().bottom;
      return [window.innerHeight - scroller.clientHeight,
              bottom - scroller.getBoundingClientRect().top + 40];
    }"""
    around, cells = page.evaluate(measure)
    height = int(min(max(around + cells, VIEWPORT["height"]), TALLEST_SCREENSHOT))
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    page.evaluate(measure)  # back to the top after the resize
    page.wait_for_timeout(500)  # let the layout settle
    page.screenshot(path=path)


def widgets_with_a_control(page) -> list:
    """Every output that shows a widget with a control, in notebook order."""
    any_control = ", ".join(selector for _, selector in CONTROLS)
    areas = page.locator(f".jp-NotebookPanel .jp-OutputArea-output:has({any_control})")
    return [areas.nth(i) for i in range(areas.count())]


def use_control(area, name: str) -> str:
    """Change the control's value like a student would. -> what was done, for the report."""
    if name == "toggle button":
        button = area.locator(".widget-toggle-button:not(.mod-active)").first
        label = button.inner_text()
        button.click()
        return f"clicked the toggle button {label!r}"
    if name == "slider":
        area.locator(".widget-slider .noUi-handle").first.press("ArrowRight")
        return "pressed ArrowRight on the first slider"
    if name == "dropdown":
        select = area.locator(".widget-dropdown select").first
        options = select.locator("option").all_inner_texts()
        current = select.evaluate("select => select.selectedIndex")
        select.select_option(index=(current + 1) % len(options))
        return f"chose {options[(current + 1) % len(options)]!r} in the first dropdown"
    area.locator(dict(CONTROLS)[name]).first.click()
    return f"clicked the first {name}"


def describe_change(before: dict, after: dict) -> str:
    changed = []
    if before["images"] != after["images"]:
        changed.append(f"{sum(a != b for a, b in zip(before['images'], after['images']))} image(s)")
    if before["bars"] != after["bars"]:
        changed.append(f"{sum(a != b for a, b in zip(before['bars'], after['bars']))} progress bar(s)")
    if before["text"] != after["text"]:
        pairs = [(a, b) for a, b in zip(before["text"], after["text"]) if a != b]
        changed.append(f"{len(pairs)} text(s), e.g. {pairs[0][0]!r} -> {pairs[0][1]!r}" if pairs
                       else "the texts")
    return ", ".join(changed)


def check_cells(page, lecture: Path, when: str, ran: list[int] | None) -> int:
    """No cell failed, every cell that should have run did (all, if ``ran`` is None), every
    widget shows as one. -> the number of widget outputs."""
    cells = page.evaluate(CELLS_JS)
    outputs = [(cell, output) for cell in cells for output in cell["outputs"]]
    errors = [f"cell {cell['index']} {cell['prompt']} {cell['source']!r}: {output['error']}"
              for cell, output in outputs if output["error"]]
    assert not errors, f"{lecture.name}: cells failed in JupyterLab {when}:\n" + "\n".join(errors)
    not_run = [f"cell {cell['index']}: {cell['source']!r}" for cell in cells
               if (ran is None or cell["index"] in ran) and not re.fullmatch(r"\[\d+\]:", cell["prompt"])]
    assert not not_run, f"{lecture.name}: cells without an execution count: {not_run}"
    as_text = [output["text"] for _, output in outputs
               if output["widget"] and output["shown_as"] != "widget"]
    assert not as_text, (f"{lecture.name}: widgets shown as text, not as widgets (is the "
                         f"jupyterlab_widgets extension installed?): {as_text}")
    broken = [output["text"] for _, output in outputs if "Error displaying widget" in output["text"]]
    assert not broken, f"{lecture.name}: widgets failed to display: {broken}"
    return sum(output["widget"] for _, output in outputs)


def exercise_widget(page, area, number: int, stem: str) -> str:
    """Use the first control of each kind in the widget, one after the other; after each, wait
    for what the widget shows to change. -> a report of the changes."""
    area.scroll_into_view_if_needed()
    area.screenshot(path=SCREENSHOTS / f"{stem}-2-widget{number}-before.png")
    reports = []
    for control, selector in CONTROLS:
        if not area.locator(selector).count():
            continue
        before = area.evaluate(SNAPSHOT_JS)
        acted = time.monotonic()
        action = use_control(area, control)

        def changed():
            now = area.evaluate(SNAPSHOT_JS)
            return now if now != before else None

        wait_for(page, changed, WIDGET_TIMEOUT_S,
                 f"widget {number} to change after the student's action ({action})", poll_s=0.25)
        responded = time.monotonic()
        wait_for(page, lambda: page.evaluate(STATE_JS)["kernel"] == "idle", WIDGET_TIMEOUT_S,
                 "the kernel to finish the widget's update")
        after = area.evaluate(SNAPSHOT_JS)
        reports.append(f"{action}: {describe_change(before, after)} changed in {responded - acted:.1f} s")
    area.screenshot(path=SCREENSHOTS / f"{stem}-3-widget{number}-after.png")
    return f"widget {number}: " + "; ".join(reports)


@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_lecture_runs_and_its_widgets_respond(lecture, browser, lab, timings):
    committed = lecture.read_bytes()
    nb = json.loads(committed)
    interactive = notebook_slice.widget_cells(nb)
    if uses_widgets(lecture):
        assert interactive, (f"{lecture.name} uses ipywidgets but its stored run shows no widget "
                             f"with a control; store a run with the widget state (tools/execute_lectures.py)")
    full = lecture.stem in RUN_ALL
    ran = None if full else notebook_slice.cells_needed(nb, interactive)
    SCREENSHOTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    page = context.new_page()
    page_errors = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        start = time.monotonic()
        open_lecture(page, lab, lecture)
        opened = time.monotonic()
        clear_outputs(page)
        if full:
            run_all_cells(page)
            how = "run all"
        else:
            run_cells(page, ran)
            how = f"ran the {len(ran)} cells its widgets need"
        report = f"{lecture.stem}: open {opened - start:.0f} s, {how} {time.monotonic() - opened:.0f} s"
        print(f"\n{report}", flush=True)
        screenshot_notebook(page, SCREENSHOTS / f"{lecture.stem}-1-ran.png")  # before the checks, to look at a failure

        widgets = check_cells(page, lecture, "after running", ran)
        report += f", no errors, {widgets} widget output(s)"
        areas = widgets_with_a_control(page)
        assert len(areas) >= len(interactive), (
            f"{lecture.name}: the stored run shows {len(interactive)} widget(s) with a control (cells "
            f"{interactive}), JupyterLab {len(areas)}; see {SCREENSHOTS / f'{lecture.stem}-1-ran.png'}")
        for number, area in enumerate(areas, 1):
            report += "; " + exercise_widget(page, area, number, lecture.stem)
        if areas:
            check_cells(page, lecture, "after using the widgets", ran)
            screenshot_notebook(page, SCREENSHOTS / f"{lecture.stem}-4-page-after.png")
        else:
            report += ", none with a control"
        print(report, flush=True)
        timings.append(report)
    finally:
        if page_errors:
            print(f"{lecture.stem}: JavaScript errors in the page: {page_errors}", flush=True)
        context.close()
        lab.shut_down_kernels()
    assert lecture.read_bytes() == committed, (
        f"the browser test rewrote {lecture.name} (autosave should be off); "
        f"restore it with: git checkout {lecture.relative_to(ROOT)}")
