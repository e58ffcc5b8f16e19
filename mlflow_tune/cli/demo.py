"""`make demo`: a small real search on built-in data against the default local store."""

from __future__ import annotations

import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "projects" / "demo.yaml"   # mlflow_tune/cli/ -> the repository


def main() -> int:
    from mlflow_tune.cli.progress import default_listener
    from mlflow_tune.cli.search import print_search, search_report
    from mlflow_tune.cli.terminal import quiet_mlflow_logs
    from mlflow_tune.config.tunefile import load_tune_file
    from mlflow_tune.study.study import search

    quiet_mlflow_logs()   # as every command does: MLflow's INFO lines are not ours to print
    if not DEMO.is_file():
        print(f"demo config {DEMO} not found; run the demo from a clone of the repository.", file=sys.stderr)
        return 2
    print(f"mlflow-tune demo: TPE search on digits ({DEMO.name}), results in ./mlflow.db", flush=True)
    outcome = search(load_tune_file(DEMO), listener=default_listener())
    print_search(outcome, search_report(outcome) if outcome.trials else None)
    parent = outcome.parent_run_id
    print("next:")
    print(f"  mlflow-tune diagnose --parent {parent}")
    print(f"  mlflow-tune report {parent} --text")
    print(f"  mlflow-tune promote {parent} --model-name digits-mlp")
    return 130 if outcome.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
