"""`make demo`: a small real search on built-in data against the default local store."""

from __future__ import annotations

import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "projects" / "demo.yaml"


def main() -> int:
    from mlflow_tune.cli import app

    if not DEMO.is_file():
        print(f"demo config {DEMO} not found; run the demo from a clone of the repository.", file=sys.stderr)
        return 2
    print(f"mlflow-tune demo: TPE search on digits ({DEMO.name}), results in ./mlflow.db", flush=True)
    try:
        app(["search", "--config", str(DEMO)], standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if code:
            return code
    print("next: mlflow-tune diagnose --parent <search run id>; "
          "mlflow-tune promote <search run id> --model-name digits-mlp")
    return 0


if __name__ == "__main__":
    sys.exit(main())
