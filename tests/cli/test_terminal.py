"""What the terminal shows: progress against what really runs, the ETA only after a few trials,
counts in a fixed order, no MLflow log lines, --version, -h and defaults and choices in --help."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
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


def test_a_resumed_search_counts_on_from_its_restored_trials() -> None:
    now = [0.0]
    restored = [TrialOutcome(0, "a", "completed", 0.9, 0.9, "healthy"), TrialOutcome(1, "b", "pruned", 1.2, 1.2)]
    c = Counts("search", 6, clock=lambda: now[0], restored=restored)
    assert c.line().startswith("[search] 2/6 done, 0 running, 1 pruned") and "best 0.9 (trial 0)" in c.line()
    for tid in (2, 3, 4):
        now[0] += 10.0
        c.add(TrialOutcome(tid, str(tid), "completed", 1.0, 1.0), c.best)
    # the ETA uses the three trials trained here (10 s each), not the two restored ones
    assert c.done() == 5 and c.eta() == "10s"


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
    assert "mtpe|tpe|random|anneal|grid" in search_help and "none|median|asha|hyperband|curve" in search_help
    assert "override the tune file" in search_help
    # at 80 columns it fits a screen: was 69-79 lines (a default note per option, wide choice columns)
    narrow = runner.invoke(app, ["search", "-h"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"}).output
    assert len(narrow.splitlines()) <= 50 and "--no-progress" not in narrow, narrow
    train_help = runner.invoke(app, ["train", "-h"], env=env).output
    assert "[default: (0.2)]" in train_help   # --val-fraction's: rich markup once ate "[default: 0.2]"


def test_patience_stops_the_search_after_trials_without_a_new_best(tracking_uri: str, tmp_path: Path) -> None:
    # grid order: the first learning rate is the good one, the next cannot beat it
    (tmp_path / "tune.yaml").write_text(
        "experiment: patience\ntrain: {dataset: iris, model: mlp, epochs: 3, hidden_units: 8}\n"
        "space:\n  lr: {choice: [0.05, 0.000001, 0.0000001, 0.00000001]}\n"
        "search: {algo: grid, pruning: none, metric: val_accuracy}\n")
    for name in ("--patience", "--no-progress"):   # the old name still works, out of the help
        done = CliRunner().invoke(app, ["search", "--config", str(tmp_path / "tune.yaml"), name, "1",
                                        "--quiet", "--no-report", "--json"])
        assert done.exit_code == 0, done.output
        result = yaml.safe_load(done.output.strip().splitlines()[-1])
        assert result["stopped_by"] == "no_progress" and result["counts"]["trials"] == 2, result


def _in_a_terminal(args: list[str], cwd: Path, columns: int, env: dict[str, str]) -> list[str]:
    """Run `mlflow-tune ARGS` on a pseudo-terminal of `columns` x 40 and return the screen it leaves."""
    import fcntl
    import pty
    import struct
    import termios

    import pyte

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "mlflow_tune.cli", *args], cwd=cwd, stdin=slave, stdout=slave,
                            stderr=slave, env={**env, "TERM": "xterm", "COLUMNS": str(columns)}, close_fds=True)
    os.close(slave)
    screen = pyte.Screen(columns, 40)
    stream = pyte.ByteStream(screen)
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:   # the terminal closed: the process is gone
            break
        if not chunk:
            break
        stream.feed(chunk)
    assert proc.wait(timeout=120) == 0
    os.close(master)
    return [line.rstrip() for line in screen.display]


@pytest.mark.slow
@pytest.mark.parametrize("columns", [60, 80, 120])
def test_the_live_line_fits_the_terminal_with_the_count_best_and_eta_first(tmp_path: Path, tracking_uri: str,
                                                                          columns: int) -> None:
    (tmp_path / "tune.yaml").write_text(
        "experiment: widths\ntrain: {dataset: iris, model: mlp, epochs: 4, hidden_units: 8}\n"
        "space:\n  lr: {choice: [0.3, 0.1, 0.03, 0.01, 0.003, 0.001]}\n"
        "search: {algo: grid, pruning: none, metric: val_accuracy}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    screen = _in_a_terminal(["search", "--config", "tune.yaml", "--no-report"], tmp_path, columns, env)
    live = [line for line in screen if re.match(r"search .*6/6 best \S+ \(#\d\)", line)]
    assert live, "\n".join(screen)
    assert "…" not in live[-1] and len(live[-1]) < columns, live[-1]   # nothing cut, nothing wrapped
    assert ("━" in live[-1]) == (columns >= 80)   # the bar only where the counts still fit beside it
    if columns >= 80:
        assert ", 0 running" in live[-1]
    # the lines printed above the live line and the summary are whole too
    assert any(line.startswith("trial 5: completed") for line in screen) and not any("…" in s for s in screen)
