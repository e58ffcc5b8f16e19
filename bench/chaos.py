"""Searches interrupted at random moments, then resumed: is anything lost, duplicated or left RUNNING?

Each case is a fresh SQLite store and a small search (digits, mlp, 6 epochs, 4 trials, no
pruning, parallel 1 or 2 alternately), interrupted after a random delay of 0.3-9 s (start-up,
set-up, trials and summary) by SIGINT, SIGTERM or SIGKILL, then resumed with `--resume` (or, if
the interrupt came before the search run existed, started again). Counted over all cases, with
the property of the reliability suite (`tests/reliability/reliability_kit.py::measure`): runs
left RUNNING, trials printed completed but not completed with all their points in the store
(points lost), configurations trained twice, parents not FINISHED with a complete summary, hangs.
Target: all zero. Run: `python bench/chaos.py [--rounds 30] [--seed 0]`.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))   # the kit's server helper
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "reliability"))

from reliability_kit import (
    EPOCHS,
    all_runs,
    completed_printed,
    finish,
    measure,
    parent_id,
    run,
    start,
    tune_file,
)

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


def case(number: int, rng: random.Random, folder: Path) -> dict[str, object]:
    parallel = 1 + number % 2
    sig = SIGNALS[number % 3] if number < 6 else rng.choice(SIGNALS)
    delay = rng.uniform(0.3, 9.0)
    uri = f"sqlite:///{folder}/mlflow.db"
    config = str(tune_file(folder, parallel=parallel, max_trials=4))
    proc = start(["search", "--config", config], folder, uri)
    time.sleep(delay)
    sent = proc.poll() is None
    if sent:
        proc.send_signal(sig)
    first = finish(proc, timeout=180)
    text = first.stderr + first.stdout
    searches = [r for r in all_runs(uri) if r.data.tags.get("mlflow_tune.role") == "search"] \
        if (folder / "mlflow.db").exists() else []
    args = ["search", "--config", config]
    if searches:
        args += ["--resume", parent_id(text, uri)]
    second = run(args, folder, uri, timeout=300)
    parent = parent_id(text + second.stderr + second.stdout, uri)
    found = measure(uri, parent, completed_printed(first.stderr, second.stderr), EPOCHS)
    return {"case": number, "parallel": parallel, "signal": sig.name if sent else "none (finished)",
            "delay": round(delay, 1), "exit": first.code, "resume_exit": second.code, **found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    totals = {"running": 0, "lost": 0, "duplicated": 0, "bad_summary": 0, "bad_exit": 0, "hangs": 0}
    for number in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="mlflow-tune-chaos-") as tmp:
            try:
                r = case(number, rng, Path(tmp))
            except AssertionError as exc:   # finish() found a process that hung
                totals["hangs"] += 1
                print(f"case {number}: HANG {exc}", flush=True)
                continue
        expected = {"SIGINT": 130, "SIGTERM": 130, "SIGKILL": -9}.get(str(r["signal"]).split()[0], 0)
        bad_exit = r["exit"] not in (expected, 0) or r["resume_exit"] != 0
        totals["running"] += len(r["running"])   # type: ignore[arg-type]
        totals["lost"] += len(r["lost"])   # type: ignore[arg-type]
        totals["duplicated"] += int(r["duplicated"])   # type: ignore[call-overload]
        totals["bad_summary"] += not r["summary_ok"]
        totals["bad_exit"] += bad_exit
        print(f"case {number:2d}: parallel {r['parallel']} {r['signal']:>16} at {r['delay']:4.1f} s -> exit "
              f"{r['exit']}, resume exit {r['resume_exit']}; {r['final']} trials ({r['completed']} completed), "
              f"RUNNING {len(r['running'])}, lost {r['lost']}, duplicated {r['duplicated']}, "
              f"summary {'ok' if r['summary_ok'] else 'INCOMPLETE'}", flush=True)   # type: ignore[arg-type]
    print(f"\n{args.rounds} cases: runs left RUNNING {totals['running']}, points lost {totals['lost']}, "
          f"trials duplicated {totals['duplicated']}, incomplete summaries {totals['bad_summary']}, "
          f"unexpected exit codes {totals['bad_exit']}, hangs {totals['hangs']} (target: all zero)")


if __name__ == "__main__":
    main()
