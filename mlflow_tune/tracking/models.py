"""A trained network logged as an MLflow PyTorch model with `mlflow.pytorch.log_model`.

The model is served as MLflow serves it: raw feature rows in, class probabilities out
(`training.models.Probabilities` carries the standardisation). It is pickled (the `pt2` format
needs a traced graph per input shape, and is ~3x slower to save here), so loading it needs the
few modules of this package that define it: they travel as `code_paths`, copied alone (a
copy of the whole package made each model ~3x slower to log, 103 ms against 38 ms).
Measured on the 2-core machine: ~40 ms per small model when warm, the first ~0.6 s (imports).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlflow_tune.training.models import Network

# What unpickling a Probabilities(Network) imports from this package.
_MODEL_MODULES = ("__init__.py", "training/__init__.py", "training/config.py", "training/data.py",
                  "training/models.py")
# MLflow warns on every pickled model that pickles run code when loaded. Our models are ours,
# loaded by our users from their own store: the warning says nothing they can act on.
PICKLE_WARNING = "Saving pytorch model by Pickle or CloudPickle format requires exercising caution"
_uri_lock = threading.RLock()   # re-entrant: promote holds it around a model it logs


@dataclass(frozen=True)
class ModelParts:
    """Everything the writer needs, made where the model was trained (no MLflow import there)."""

    weights: bytes                  # torch.save of the whole served module (pickle)
    example: Any                    # a few raw input rows (numpy)
    code_paths: tuple[str, ...]     # source the pickle needs: this package, a user's model module


def model_parts(network: Network, example: Any) -> ModelParts:
    """`network` as served (raw rows in, class probabilities out), with its example and code."""
    import inspect

    import torch

    import mlflow_tune
    from mlflow_tune.training.models import Probabilities

    served = Probabilities(network).cpu().eval()
    buffer = io.BytesIO()
    torch.save(served, buffer)
    code = [str(Path(mlflow_tune.__file__).parent)]
    source = getattr(inspect.getmodule(type(network.body)), "__file__", None)
    if source and not str(source).startswith(code[0]) and "site-packages" not in str(source):
        code.append(str(source))   # a user's model module
    return ModelParts(buffer.getvalue(), example, tuple(code))


@functools.cache
def requirements() -> tuple[str, ...]:
    """Pinned to what trained the model: inferring them spawns a subprocess (~8 s)."""
    from importlib.metadata import version

    return (f"torch=={version('torch').split('+')[0]}", f"numpy=={version('numpy')}",
            f"cloudpickle=={version('cloudpickle')}")


class _NotPickleWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return PICKLE_WARNING not in record.getMessage()


@contextlib.contextmanager
def global_store(uri: str) -> Iterator[None]:
    """`mlflow.pytorch.log_model`, and loading a `models:/` URI, go through MLflow's global tracking
    URI; ours is explicit (threads and workers each name their store). Point the global one at
    `uri` for the call."""
    import mlflow
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _uri_lock:
        if mlflow.get_tracking_uri() == uri:
            yield
            return
        with _use_tracking_uri(uri):
            yield


def _slim_code(paths: tuple[str, ...], into: Path) -> list[str]:
    """This package reduced to the modules a pickled model imports; other paths as they are."""
    import mlflow_tune

    package = Path(mlflow_tune.__file__).parent
    out = []
    for path in map(Path, paths):
        if path != package:
            out.append(str(path))
            continue
        slim = into / package.name
        for name in _MODEL_MODULES:
            (slim / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(package / name, slim / name)
        out.append(str(slim))
    return out


def log_model(client: MlflowClient, run_id: str, parts: ModelParts, name: str = "model") -> str:
    """Log `parts` as an MLflow PyTorch model of run `run_id`; returns its `models:/ID` URI."""
    import mlflow.pytorch
    import torch

    served = torch.load(io.BytesIO(parts.weights), weights_only=False)
    # log_model would create the LoggedModel in MLflow's active experiment, not the run's.
    run = client.get_run(run_id)
    logged = client.create_logged_model(run.info.experiment_id, name=name, source_run_id=run_id,
                                        params=dict(run.data.params))
    quiet = _NotPickleWarning()
    logger = logging.getLogger("mlflow.pytorch")
    logger.addFilter(quiet)
    try:
        with tempfile.TemporaryDirectory(prefix="mlflow-tune-code-") as tmp, global_store(str(client.tracking_uri)):
            info = mlflow.pytorch.log_model(served, name=name, run_id=run_id, model_id=logged.model_id,
                                            input_example=parts.example,
                                            code_paths=_slim_code(parts.code_paths, Path(tmp)),
                                            pip_requirements=list(requirements()),
                                            serialization_format="pickle")
    finally:
        logger.removeFilter(quiet)
    return str(info.model_uri)
