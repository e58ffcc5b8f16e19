"""MLflow runs addressed explicitly: the store, experiments, run trees and one run's writes.

Runs are addressed by an explicit ``MlflowClient`` and run id (never the thread-local
active run), so threads, processes and Spark workers all log to the right run and child
runs nest through an explicit parent id.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow_tune.training.config import ConfigError

if TYPE_CHECKING:
    from mlflow import MlflowClient

DEFAULT_STORE = "mlflow.db"
# The schemes MLflow's tracking stores accept (mlflow/tracking/_tracking_service/utils.py); any other
# failed deep inside MLflow with a traceback. tests/tracking/test_runs_uri.py checks MLflow still takes them.
URI_SCHEMES = ("sqlite", "http", "https", "file", "postgresql", "mysql", "mssql", "databricks")
MAX_EXPERIMENT_NAME = 500   # MLflow's own limit, refused by it with a traceback
TAG = "mlflow_tune."
PARENT_TAG = "mlflow.parentRunId"
# The runs table as the printed link opens it: the objective, the diagnosis and the outcome as columns
# (MLflow's default shows Source, Models and Dataset, empty for our runs). MLflow's UI keeps a shared
# view as an experiment tag `mlflow.sharedViewState.<key>` (JSON of its page state, the UI-state fields
# of models/ExperimentPageUIState.tsx) and opens it for the URL parameter `viewStateShareKey=<key>`;
# tests/browser/test_mlflow_ui.py fails if MLflow stops reading it.
VIEW_KEY = "mlflow-tune"
VIEW_TAG = "mlflow.sharedViewState." + VIEW_KEY
RUNS_VIEW = {
    "selectedColumns": ["metrics.`objective`", f"tags.`{TAG}diagnosis`", f"tags.`{TAG}outcome`"],
    "runsExpanded": {}, "runsPinned": [], "runsHidden": [], "runsVisibilityMap": {},
    "runsHiddenMode": "FIRST_10_RUNS", "viewMaximized": False, "runListHidden": False,
    "isAccordionReordered": False, "useGroupedValuesInCharts": True, "hideEmptyCharts": True, "groupBy": None,
    "groupsExpanded": {}, "autoRefreshEnabled": True,
    "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""},
    "orderByKey": "attributes.start_time", "orderByAsc": False,
}
# MLflow 3 opens an experiment of this kind on its training runs, not on the GenAI overview (traces).
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development", VIEW_TAG: json.dumps(RUNS_VIEW)}
_BATCH = 100   # MLflow accepts at most 100 params per log_batch call


def resolve_tracking_uri(uri: str | None = None) -> str:
    """`uri`, else MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db; relative SQLite paths made absolute."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE}"
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        uri = prefix + str(Path(uri[len(prefix):]).resolve())
    elif "://" not in uri:   # a bare path: MLflow would treat it as a file store
        raise ValueError(f"tracking URI {uri!r} is not a URI; use e.g. sqlite:///mlflow.db or http://host:5000.")
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower()   # postgresql+psycopg2 -> postgresql
    if scheme not in URI_SCHEMES:
        raise ValueError(f"tracking URI {uri[:100]!r} has an unknown scheme {scheme[:40]!r}; "
                         f"use one of: {', '.join(URI_SCHEMES)}.")
    return uri


LOCAL_UI = "http://127.0.0.1:5000"   # where `mlflow ui` serves by default


def ui_base_url(tracking_uri: str) -> str:
    """The MLflow UI showing this store: the server itself, or for a local store `mlflow ui`'s default."""
    return tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else LOCAL_UI


def client_for(uri: str | None = None) -> MlflowClient:
    """A client of the store at `uri`, made ready first (tracking/store.py: once per process)."""
    from mlflow import MlflowClient

    # Against a tracking server MLflow prints a "View run" link on stdout at each run's end (into a
    # `--json` answer), after one more request to the server for the run's name: neither is wanted.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

    from mlflow_tune.tracking.store import prepare

    resolved = resolve_tracking_uri(uri)
    prepare(resolved)
    return MlflowClient(tracking_uri=resolved)


def check_access(client: MlflowClient) -> None:
    """A tracking server that refuses our credentials is one line before any run exists, not a traceback.

    Credentials are MLflow's own variables (MLFLOW_TRACKING_USERNAME/PASSWORD or _TOKEN), read by
    its client from the environment: never a parameter, a tag or a command-line argument of ours.
    """
    uri = str(client.tracking_uri)
    if not uri.startswith(("http://", "https://")):
        return
    from mlflow.exceptions import MlflowException

    try:
        client.search_experiments(max_results=1)
    except MlflowException as exc:
        status = exc.get_http_status_code()   # type: ignore[no-untyped-call]
        if status in (401, 403):
            what = "refused the credentials" if status == 401 else "denies this user access"
            raise ConfigError(f"tracking server {uri[:120]} {what} (HTTP {status}); set MLFLOW_TRACKING_USERNAME "
                              "and MLFLOW_TRACKING_PASSWORD to a user it knows.") from None
        raise


_experiments: dict[tuple[str, str], str] = {}


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """The experiment's id, creating it with artifacts beside a SQLite database (not the cwd).

    Remembered per store and name: a loop of runs looks it up once, not once per run.
    """
    if not name:
        raise ConfigError("the experiment name must not be empty.")
    if len(name) > MAX_EXPERIMENT_NAME:
        raise ConfigError(f"experiment name {name[:40]!r}... has {len(name)} characters; "
                          f"use 1 to {MAX_EXPERIMENT_NAME}.")
    key = (str(client.tracking_uri), name)
    if key not in _experiments:
        _experiments[key] = _find_or_create_experiment(client, name)
    return _experiments[key]


def _find_or_create_experiment(client: MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        if VIEW_TAG not in found.tags:   # made by MLflow or an earlier mlflow-tune: the link's view too
            with contextlib.suppress(Exception):   # e.g. a server that lets this user log but not edit
                client.set_experiment_tag(found.experiment_id, VIEW_TAG, EXPERIMENT_TAGS[VIEW_TAG])
        return str(found.experiment_id)
    uri = client.tracking_uri
    location = None
    if uri.startswith("sqlite:///"):
        location = Path(uri[len("sqlite:///"):]).parent.joinpath("mlartifacts").as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS))
    except Exception:   # another worker created it between our lookup and create
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list[Any]:
    """Direct children of a run (explicit parent-id tag), oldest first, all pages."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                                  max_results=1000, order_by=["attributes.start_time ASC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def end_deleted_children(client: MlflowClient, experiment_id: str, parent_run_id: str) -> int:
    """End KILLED the deleted children of a run left RUNNING (runs made ahead for trials that never
    came, discarded by an older version or a process stopped mid-discard); returns how many."""
    from mlflow.entities import ViewType

    left = client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent_run_id}' and "
                              "attributes.status = 'RUNNING'", run_view_type=ViewType.DELETED_ONLY, max_results=1000)
    for run in left:   # MLflow changes no deleted run: restored for the moment it takes to end it
        client.restore_run(run.info.run_id)
        client.set_terminated(run.info.run_id, "KILLED")
        client.delete_run(run.info.run_id)
    return len(left)


def trial_runs(client: MlflowClient, experiment_id: str, search_run_id: str) -> list[Any]:
    """The runs under a search that are not stage runs: its children and its stages' children."""
    out, frontier = [], [search_run_id]
    while frontier:
        children = [c for parent in frontier for c in child_runs(client, experiment_id, parent)]
        out += [c for c in children if c.data.tags.get(TAG + "role") != "stage"]
        frontier = [c.info.run_id for c in children if c.data.tags.get(TAG + "role") == "stage"]
    return sorted(out, key=lambda r: r.info.start_time)


def finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}


@dataclass(frozen=True)
class RunRef:
    """A run written through the writer only: no MLflow client in this process."""

    tracking_uri: str
    run_id: str
    fresh: bool = True
    experiment_id: str = ""   # when known: saves the writer a lookup


class RunLogger:
    """A handle on one MLflow run: batched writes, artifacts from memory, termination."""

    @property
    def tracking_uri(self) -> str:
        return str(self.client.tracking_uri)

    def __init__(self, client: MlflowClient, run_id: str, fresh: bool = False, experiment_id: str = ""):
        self.client, self.run_id = client, run_id
        self.fresh = fresh   # created by us just now: no params logged yet
        self.experiment_id = experiment_id   # "" when not known

    @classmethod
    def start(cls, client: MlflowClient, experiment_id: str, *, name: str | None = None,
              tags: Mapping[str, str] | None = None, parent_run_id: str | None = None) -> RunLogger:
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        run = client.create_run(experiment_id, run_name=name, tags=all_tags)
        return cls(client, run.info.run_id, fresh=True, experiment_id=str(experiment_id))

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[i:i + _BATCH], synchronous=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        self.log_batch([(k, v, step) for k, v in metrics.items()])

    def log_batch(self, metrics: Iterable[tuple[str, float, int]] = (), params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None) -> None:
        """Metrics (key, value, step), params and tags in one write: one database commit."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v, step in metrics]
        items = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        labels = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        if not (batch or items or labels):
            return
        # MLflow takes at most 1000 metrics, 100 params and 100 tags per call.
        for i in range(0, max(len(batch), 1), 1000):
            first = i == 0
            self.client.log_batch(self.run_id, metrics=batch[i:i + 1000], params=items[:_BATCH] if first else [],
                                  tags=labels[:_BATCH] if first else [], synchronous=True)
        if len(items) > _BATCH or len(labels) > _BATCH:
            self.log_params(dict((p.key, p.value) for p in items[_BATCH:]))
            self.set_tags(dict((t.key, t.value) for t in labels[_BATCH:]))

    def log_dir(self, local: str | Path, folder: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(local), folder)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        if tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, text: str, path: str) -> None:
        self.client.log_text(self.run_id, text, path)

    def log_file(self, local: str | Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local), folder)

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)

    def status(self) -> str:
        return str(self.client.get_run(self.run_id).info.status)


def autologging(flavor: str, run_id: str) -> bool:
    """Whether MLflow's autologging of `flavor` is on, and so already writes a framework's metrics;
    refused (ValueError) when it would write them to another run than `run_id`."""
    import sys

    if "mlflow" not in sys.modules:   # nobody here turned it on
        return False
    from mlflow.utils.autologging_utils import autologging_is_disabled

    if autologging_is_disabled(flavor):  # type: ignore[no-untyped-call]
        return False
    if where := active_elsewhere(run_id):
        raise ValueError(f"mlflow.{flavor}.autolog() would write into {where}, not the trial's run {run_id}: "
                         "train inside `with trial_run(trial):` (mlflow_tune.integrations).")
    return True


def active_elsewhere(run_id: str) -> str:
    """"" when MLflow's active run is `run_id`; else where MLflow's fluent logging would write."""
    import mlflow

    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        return ""
    return "a new run" if active is None else f"run {active.info.run_id}"


@contextlib.contextmanager
def trial_run(trial: Any) -> Iterator[Any]:
    """The trial's run as MLflow's active run, for `mlflow.<flavor>.autolog()` and `mlflow.log_*`.

    Left RUNNING on the way out (`end_run(status="RUNNING")` only pops it): the search ends the run
    with the trial's outcome, and a run ended FINISHED before its outcome tag would look like a
    finished trial to anyone reading the store in between."""
    import mlflow

    mlflow.set_tracking_uri(trial.tracking_uri)
    run = mlflow.start_run(run_id=trial.run_id)
    try:
        yield run
    finally:
        mlflow.end_run(status="RUNNING")
