"""Searches interrupted at random moments, then resumed: is anything lost, duplicated or left RUNNING?

Each case is a fresh SQLite store and a small search (digits, mlp, 6 epochs, 4 trials, no
pruning, parallel 1 or 2 alternately), interrupted after a random delay of 0.3-9 s (start-up,
set-up, trials and summary) by SIGINT, SIGTERM or SIGKILL, then resumed with `--resume` (or, if
the interrupt came before the search run existed, started again). Counted over all cases, with
the property of the reliability suite (`tests/reliability/reliability_kit.py::measure`): runs
left RUNNING, trials printed completed but not completed with all their points in the store
(points lost), configurations trained twice, parents not FINISHED with a complete summary, hangs.
Target: all zero. Run: `python bench/chaos.py [--rounds 30] [--seed 0]`.

`--moment server` (issue 29): the search runs against a real `mlflow server` (fresh SQLite store),
which is stopped 1-9 s after the search starts and started again 2-20 s later; `--moment disk`:
the store and its artifacts on a tmpfs of 0.6-2.5 MB (root only), which fills mid-search, then
grows to 64 MB before `--resume`. Both also count tracebacks on stderr and stop lines without the
resume command, and the store is checked after the stop as well as after the resume.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
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
    running,
    sqlite_server,
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


def store_case(number: int, rng: random.Random, folder: Path, moment: str) -> dict[str, object]:
    """A server lost for a while, or a disk that fills: what the stop and the resume leave."""
    parallel = 1 + number % 2
    config = tune_file(folder, parallel=parallel, max_trials=6, epochs=EPOCHS)
    server, disk = None, folder / "disk"
    if moment == "server":
        server = sqlite_server(folder / "server").start()
        uri, cwd, delay, down = server.uri, folder, rng.uniform(1.0, 9.0), rng.uniform(2.0, 20.0)
    else:
        disk.mkdir()
        size = rng.uniform(0.6, 2.5)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(size * 1024)}k", "tmpfs", str(disk)], check=True)
        uri, cwd, delay, down = f"sqlite:///{disk}/mlflow.db", disk, size, 0.0
        config.write_text(config.read_text().replace("pruning: none", "pruning: none, top_k_models: 3"))
    try:
        proc = start(["search", "--config", str(config)], cwd, uri)
        box: dict[str, object] = {}
        waiting = threading.Thread(target=lambda: box.update(first=finish(proc, timeout=300)))
        waiting.start()
        if server is not None:
            time.sleep(delay)
            server.stop()
            time.sleep(down)
            server.start()
        waiting.join()
        first = box["first"]
        text = first.stderr + first.stdout   # type: ignore[attr-defined]
        if server is None:
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        printed = completed_printed(first.stderr)   # type: ignore[attr-defined]
        searches = [r for r in all_runs(uri) if r.data.tags.get("mlflow_tune.role") == "search"] \
            if server is not None or (disk / "mlflow.db").exists() else []
        if searches:   # resume it; else the store failed before the search had a run: start it again
            parent = parent_id(text, uri)
            at_stop = measure(uri, parent, printed, EPOCHS)
            second = run(["search", "--config", str(config), "--resume", parent], cwd, uri, timeout=300)
        else:
            at_stop = {"lost": sorted(printed)}   # nothing was stored: any trial printed completed is lost
            second = run(["search", "--config", str(config)], cwd, uri, timeout=300)
            parent = parent_id(second.stderr + second.stdout, uri)
        found = measure(uri, parent, completed_printed(first.stderr, second.stderr), EPOCHS)   # type: ignore[attr-defined]
        last = (text.strip().splitlines() or [""])[-1]
        stopped = first.code == 1   # type: ignore[attr-defined]
        return {"case": number, "parallel": parallel, "moment": moment, "delay": round(delay, 1),
                "down": round(down, 1), "exit": first.code, "resume_exit": second.code,   # type: ignore[attr-defined]
                "tracebacks": (text + second.stderr).count("Traceback"),
                # nothing to resume when the store failed before the search had a run, or could not be made
                "no_resume_line": stopped and "--resume" not in last and "before its first trial" not in last
                and "cannot create the tracking store" not in last, **found,
                "lost": sorted(set(at_stop["lost"]) | set(found["lost"])), "running": running(uri)}
    finally:
        if server is not None:
            server.stop()
        if disk.exists() and server is None:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def store_main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    totals = dict.fromkeys(("running", "lost", "duplicated", "bad_summary", "bad_exit", "tracebacks",
                            "no_resume_line", "hangs"), 0)
    for number in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="mlflow-tune-chaos-") as tmp:
            try:
                r = store_case(number, rng, Path(tmp), args.moment)
            except AssertionError as exc:
                totals["hangs"] += 1
                print(f"case {number}: HANG {exc}", flush=True)
                continue
        totals["running"] += len(r["running"])   # type: ignore[arg-type]
        totals["lost"] += len(r["lost"])   # type: ignore[arg-type]
        totals["duplicated"] += int(r["duplicated"])   # type: ignore[call-overload]
        totals["bad_summary"] += not r["summary_ok"]
        totals["bad_exit"] += r["exit"] not in (0, 1) or r["resume_exit"] != 0
        totals["tracebacks"] += int(r["tracebacks"])   # type: ignore[call-overload]
        totals["no_resume_line"] += bool(r["no_resume_line"])
        what = f"down {r['down']:4.1f} s at {r['delay']:3.1f} s" if args.moment == "server" else f"{r['delay']:.1f} MB"
        print(f"case {number:2d}: parallel {r['parallel']} {args.moment} {what} -> exit {r['exit']}, resume exit "
              f"{r['resume_exit']}; {r['final']} trials, RUNNING {len(r['running'])}, lost {r['lost']}, "   # type: ignore[arg-type]
              f"duplicated {r['duplicated']}, tracebacks {r['tracebacks']}, "
              f"summary {'ok' if r['summary_ok'] else 'INCOMPLETE'}", flush=True)
    print(f"\n{args.rounds} {args.moment} cases: runs left RUNNING {totals['running']}, points lost {totals['lost']}, "
          f"trials duplicated {totals['duplicated']}, incomplete summaries {totals['bad_summary']}, "
          f"unexpected exit codes {totals['bad_exit']}, tracebacks {totals['tracebacks']}, stop lines without "
          f"the resume command {totals['no_resume_line']}, hangs {totals['hangs']} (target: all zero)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--moment", choices=("signal", "server", "disk"), default="signal",
                        help="what stops the search: a signal, a lost server, a full disk")
    args = parser.parse_args()
    if args.moment != "signal":
        store_main(args)
        return
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
