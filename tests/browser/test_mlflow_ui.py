"""A finished search as a person sees it: `mlflow server` on loopback, opened in Debian's chromium
driven by Playwright. Checks the runs table (nested trials, objective and diagnosis columns), the
search run's page (its description) and report.html inside MLflow's artifact viewer (its figures
decoded), and saves screenshots under test-artifacts/browser/ (MLFLOW_TUNE_TEST_ARTIFACTS overrides).

Playwright drives the system browser (`executable_path`); `playwright install` is never run.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import needs
from servers import MlflowServer

from mlflow_tune.cli.common import ui_hint
from mlflow_tune.cli.report import make_report
from mlflow_tune.config.tunefile import parse_tune_config
from mlflow_tune.study.study import search
from mlflow_tune.tracking.runs import client_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("MLFLOW_TUNE_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "browser"
TUNE = {"experiment": "digits-mlp", "train": {"dataset": "digits", "model": "mlp", "epochs": 4, "num_threads": 1},
        "space": {"lr": {"loguniform": [1e-3, 1]}, "hidden_units": {"choice": [16, 64]}},
        "search": {"algo": "random", "max_trials": 6, "pruning": "none", "top_k_models": 0, "seed": 1}}

pytestmark = [pytest.mark.slow,
              needs(Path(CHROMIUM).exists(), "Debian's chromium")]


@pytest.fixture
def server(tracking_uri: str, tmp_path: Path) -> Iterator[str]:
    mlflow = MlflowServer(tmp_path / "server", tracking_uri, serve_artifacts=False).start(timeout=90)
    try:
        yield mlflow.uri
    finally:
        mlflow.stop()


def _decoded_widths(images: Any, wait_s: float = 20) -> list[int]:
    """Each image's decoded width (0 while not decoded), once all are decoded or after wait_s."""
    deadline = time.monotonic() + wait_s
    while True:
        widths = images.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        if all(widths) or time.monotonic() > deadline:
            return list(widths)
        time.sleep(0.2)


def test_search_in_the_mlflow_ui(tracking_uri: str, server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)   # the UI's first load is slow on a loaded CI machine
    out = search(parse_tune_config(TUNE), tracking_uri=tracking_uri)
    make_report(client_for(tracking_uri), out.parent_run_id)
    eid, rid = out.experiment_id, out.parent_run_id
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 760})   # a fresh profile
        # MLflow's assistant panel opens by itself on first load and covers a third of the page
        context.add_init_script("localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1','true');"
                                "localStorage.setItem('mlflow.assistant.panelOpen_v1','false')")
        page = context.new_page()
        page.set_default_timeout(60_000)

        # the runs table, as the printed link opens it: the objective, diagnosis and outcome columns
        # without a click on "Columns" (the experiment's shared view), the empty Source, Models and
        # Dataset columns gone; the search's trials nested under it
        link = re.search(r"runs: (\S+)", ui_hint(server, eid)).group(1)   # type: ignore[union-attr]
        page.goto(link)
        expect(page.get_by_text("search random digits-mlp")).to_be_visible()
        for column in ("objective", "mlflow_tune.diagnosis", "mlflow_tune.outcome"):
            expect(page.get_by_role("columnheader", name=column).first).to_be_visible()
        for column in ("Source", "Models", "Dataset"):
            expect(page.get_by_role("columnheader", name=column)).to_have_count(0)
        page.locator("[role=row]", has_text="search random digits-mlp").locator(
            "button[data-component-id*=runnamecellrenderer]").click()   # unfold the search's trials
        for trial in out.trials:
            expect(page.get_by_text(re.compile(rf"^trial-{trial.tid:02d} "))).to_be_visible()
        expect(page.get_by_text(re.compile("^(healthy|underfit|overfit|nonconvergent)$")).first).to_be_visible()
        page.screenshot(path=SHOTS / "runs.png")

        # the search run's page: its description says what came out
        page.goto(f"{server}/#/experiments/{eid}/runs/{rid}?workflowType=machine_learning")
        expect(page.get_by_text(re.compile(r"^Best trial:")).first).to_be_visible()
        expect(page.get_by_text("Stopped because", exact=False).first).to_be_visible()
        expect(page.get_by_role("link", name=re.compile(r"^trial-00 "))).to_be_visible()   # its child runs
        page.screenshot(path=SHOTS / "run.png")

        # report.html in the artifact viewer, reached from the description's link: its figures
        # decode there too (naturalWidth > 0)
        if page.get_by_text("Show more").count():
            page.get_by_text("Show more").first.click()
        href = page.get_by_role("link", name="report.html").first.get_attribute("href")
        # MLflow opens it in a new tab
        assert href == f"#/experiments/{eid}/runs/{rid}/artifacts/report.html?workflowType=machine_learning"
        page.goto(f"{server}/{href}")
        frame = page.frame_locator("iframe").first
        expect(frame.get_by_text("Optimisation history")).to_be_visible()
        # the viewer's sandbox opens no link: the run ids stand in for them, and the page says so
        expect(frame.get_by_text("links cannot open", exact=False)).to_be_visible()
        expect(frame.locator("a[data-run]")).to_have_count(0)
        expect(frame.get_by_text(out.trials[0].run_id, exact=False).first).to_be_visible()
        images = frame.locator("img")
        expect(images).to_have_count(5)
        assert all(w > 300 for w in _decoded_widths(images)), _decoded_widths(images)
        page.screenshot(path=SHOTS / "report.png")

        # and the same file opened from disk, with no server at all
        page.goto((Path.cwd() / "reports" / rid / "report.html").as_uri())
        expect(page.locator("img")).to_have_count(5)
        assert all(w > 300 for w in _decoded_widths(page.locator("img"))), _decoded_widths(page.locator("img"))
        expect(page.locator("a[data-run]")).to_have_count(len(out.trials))   # from disk the links stay
        page.set_viewport_size({"width": 1100, "height": 1500})
        page.screenshot(path=SHOTS / "report-from-disk.png")
        browser.close()
