"""Hostile but fair input (issue 12, item 7): bounded counts, capped parallelism, no alias bombs,
linear duplicate checks, and error messages that stay one short line."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlflow_tune.cli import app
from mlflow_tune.config.settings import SearchSettings
from mlflow_tune.config.space_yaml import parse_space
from mlflow_tune.config.tunefile import load_tune_file
from mlflow_tune.training.config import ConfigError, TrainConfig


def test_counts_have_upper_bounds() -> None:
    with pytest.raises(ConfigError, match=r"epochs=1000000000000 is out of range; it must be in \[1, 1000000\]"):
        TrainConfig(epochs=10**12)
    with pytest.raises(ConfigError, match="max_trials=1000000 is out of range"):
        SearchSettings(max_trials=10**6)


def test_parallel_is_capped_at_the_cores() -> None:
    cores = os.cpu_count() or 1
    with pytest.raises(ConfigError, match=rf"search.parallel=1000 is more than this machine's {cores} cores"):
        SearchSettings(parallel=1000)
    assert SearchSettings(parallel=max(cores, 2)).parallel == max(cores, 2)


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]"
                                                  for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\nspace: {lr: {choice: *i}}\n")
    tic = time.perf_counter()
    with pytest.raises(ConfigError, match=r"YAML aliases \(\*a\) are not allowed"):
        load_tune_file(bomb)
    assert time.perf_counter() - tic < 2


def test_a_huge_tune_file_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 2_000_000 + "\nspace: {lr: {choice: [1]}}\n")
    with pytest.raises(ConfigError, match="a tune file may have at most 1000000"):
        load_tune_file(big)


def test_duplicate_choice_check_is_linear_and_its_message_short() -> None:
    values = [i * 1e-6 + 1e-3 for i in range(9_999)] + [1e-3]
    tic = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        parse_space({"lr": {"choice": values}})
    assert time.perf_counter() - tic < 2 and len(str(caught.value)) < 200
    with pytest.raises(ConfigError, match="at most 10000 are allowed"):
        parse_space({"lr": {"choice": list(range(20_000))}})


def test_cli_errors_stay_one_short_line(tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text("space: {lr: {choice: [" + ", ".join(["0.1"] * 3) + "]}}\nexperiment: " + "e" * 600 + "\n")
    done = CliRunner().invoke(app, ["search", "--config", str(config)])
    assert done.exit_code == 2
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) <= 410, lines
