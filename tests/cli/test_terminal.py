"""What the terminal shows: progress against what really runs, the ETA only after a few trials,
counts in a fixed order, no MLflow log lines, --version, -h and defaults and choices in --help."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from mlflow_tune.cli.app import app
from mlflow_tune.cli.progress import Counts, PlainProgress
from mlflow_tune.trials.records import TrialOutcome

TUNE = {"experiment": "term", "train": {"dataset": "digits", "model": "mlp", "epochs": 2, "num_threads": 1,
                                        "hidden_units": 16},
        "space": {"lr": {"choice": [0.01, 0.1]}, "dropout": {"choice": [0.0, 0.2]}},
        "search": {"algo": "grid", "max_trials": 20, "pruning": "none", "top_k_models": 0}}


def outcome(tid: int, status: str = "completed", diagnosis: str = "healthy") -> TrialOutcome:
    return TrialOutcome(tid, f"r{tid}", status, 0.5 - tid / 100, 0.5 - tid / 100, diagnosis, 3, "", {})


def test_eta_waits_for_a_few_trials_and_uses_the_rate_seen() -> None:
    now = [0.0]
    c = Counts("search", 10, clock=lambda: now[0])
    for tid in range(2):
        now[0] += 10
        c.add(outcome(tid), None)
    assert "ETA" not in c.line()   # 2 trials (the first paid the start-up) say too little
    now[0] += 10
    c.add(outcome(2), None)
    assert c.eta() == "1m10s"      # 7 left at 10 s each
    c.add(outcome(3, "pruned", "overfit"), None)
    c.add(outcome(4, "completed", "underfit"), None)
    line = c.line()
    assert line.startswith("[search] 5/10 done, 0 running, 1 pruned, 0 failed, 3 healthy, 1 underfit, 1 overfit")


def test_plain_progress_counts_against_the_grid(tracking_uri: str, tmp_path: Path) -> None:
    from mlflow_tune.config.tunefile import parse_tune_config
    from mlflow_tune.study.study import search

    stream = io.StringIO()
    search(parse_tune_config(TUNE), tracking_uri=tracking_uri, listener=PlainProgress(stream))
    first, *lines = stream.getvalue().splitlines()
    assert re.fullmatch(r"search run [0-9a-f]{32} started; --resume it if it stops", first), first
    assert len(first) <= 80
    assert len(lines) == 4 and all("/4 done" in line for line in lines)   # 2x2 grid, not max_trials=20
    assert "[search] 4/4 done, 0 running" in lines[-1]


def test_search_output_has_no_mlflow_log_lines(tmp_path: Path) -> None:
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump({**TUNE, "space": {"lr": {"choice": [0.01]}}}))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_LOGGING_LEVEL"}
    run = subprocess.run([sys.executable, "-m", "mlflow_tune.cli", "search", "--config", str(config),
                          "--tracking-uri", f"sqlite:///{tmp_path}/fresh.db", "--no-report"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    everything = run.stdout + run.stderr
    assert "Creating initial MLflow database tables" not in everything and " INFO " not in everything
    assert "trial 0: completed" in run.stderr and "1/1 done" in run.stderr
    quiet = subprocess.run([sys.executable, "-m", "mlflow_tune.cli", "search", "--config", str(config),
                            "--tracking-uri", f"sqlite:///{tmp_path}/fresh.db", "--no-report", "--quiet"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_version_short_help_and_defaults_in_help() -> None:
    from mlflow_tune import __version__

    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output.strip() == f"mlflow-tune {__version__}"
    root = runner.invoke(app, ["-h"])
    assert root.exit_code == 0 and "search" in root.output and "--install-completion" in root.output
    env = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}
    search_help = runner.invoke(app, ["search", "-h"], env=env).output
    assert "[mtpe|tpe|random|anneal|grid]" in search_help and "[none|median|asha|hyperband|curve]" in search_help
    assert "from the tune file" in search_help
    train_help = runner.invoke(app, ["train", "-h"], env=env).output
    assert "[default: (0.2)]" in train_help   # --val-fraction's: rich markup once ate "[default: 0.2]"
