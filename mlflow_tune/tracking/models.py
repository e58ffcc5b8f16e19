"""A trained network logged as an MLflow PyTorch model, cheaply enough for every run.

`mlflow.pytorch.log_model` (`Model.log`) took ~110 ms per small model here, a third of a
20-epoch run: it saves the model from scratch (requirements, a copy of the code, signature,
example), loads it back to check it, and records the LoggedModel in nine commits. Models of
one kind (same signature, code and requirements) differ only in their weights, example rows
and ids. So the first model of a kind is saved by `mlflow.pytorch.save_model` into a template;
each model then gets a folder of hard links to the template, its own pickled weights, example
and MLmodel, and a LoggedModel recorded with three calls. What comes out is what
`mlflow.pytorch.save_model` writes: it loads with `mlflow.pytorch.load_model` and
`mlflow.pyfunc.load_model`, and registers like any logged model.
"""

from __future__ import annotations

import atexit
import datetime
import functools
import io
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.models import Model

    from mlflow_tune.training.models import Network

_WEIGHTS = Path("data") / "model.pth"
_EXAMPLE, _SERVING_EXAMPLE = "input_example.json", "serving_input_example.json"
# What unpickling a Probabilities(Network) imports from this package (models -> config, data).
_MODEL_MODULES = ("__init__.py", "training/__init__.py", "training/config.py", "training/data.py",
                  "training/models.py")


@dataclass(frozen=True)
class ModelParts:
    """Everything the writer needs, made where the model was trained (no MLflow import there)."""

    weights: bytes                  # torch.save of the whole module (pickle)
    example: Any                    # a few raw input rows (numpy)
    output: Any                     # the model's output on them (numpy), for the signature
    code_paths: tuple[str, ...]     # source the pickle needs: this package, a user's model module


@dataclass(frozen=True)
class _Template:
    folder: Path
    mlmodel: dict[str, Any]


class _Templates:
    """Saved models by kind, in a folder that lives as long as the process."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mlflow-tune-models-"))
        self.saved: dict[tuple[str, ...], _Template] = {}
        self.lock = threading.Lock()

    def get(self, parts: ModelParts, signature: Any, requirements: tuple[str, ...]) -> _Template:
        described = signature.to_dict()
        key = (described["inputs"], described["outputs"], *parts.code_paths, *requirements)
        with self.lock:
            if key not in self.saved:
                self.saved[key] = self._save(parts, signature, requirements)
            return self.saved[key]

    def _save(self, parts: ModelParts, signature: Any, requirements: tuple[str, ...]) -> _Template:
        import mlflow.pytorch
        import torch
        from mlflow.models import Model

        folder = self.root / f"template-{len(self.saved)}"
        mlmodel = Model()
        code = [self._slim(Path(p)) for p in parts.code_paths]
        mlflow.pytorch.save_model(torch.load(io.BytesIO(parts.weights), weights_only=False), str(folder),
                                  mlflow_model=mlmodel, code_paths=code, signature=signature,
                                  input_example=parts.example, pip_requirements=list(requirements),
                                  serialization_format="pickle")
        for cache in folder.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        return _Template(folder, mlmodel.to_dict())

    def _slim(self, path: Path) -> str:
        """This package reduced to the modules a pickled model imports (5 files instead of ~45)."""
        import mlflow_tune

        package = Path(mlflow_tune.__file__).parent
        if path != package:
            return str(path)
        slim = self.root / "code" / package.name
        if not slim.exists():
            for name in _MODEL_MODULES:
                (slim / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(package / name, slim / name)
        return str(slim)

    def stage(self, template: _Template, parts: ModelParts, mlmodel: Model) -> Path:
        """A model folder: hard links to the template (copies across file systems), own files."""
        own = {_WEIGHTS, Path("MLmodel"), Path(_EXAMPLE), Path(_SERVING_EXAMPLE)}
        folder = Path(tempfile.mkdtemp(dir=self.root, prefix="model-"))
        for source in template.folder.rglob("*"):
            relative = source.relative_to(template.folder)
            target = folder / relative
            if source.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif relative not in own:
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copy2(source, target)
        (folder / _WEIGHTS).parent.mkdir(parents=True, exist_ok=True)
        (folder / _WEIGHTS).write_bytes(parts.weights)
        rows = parts.example.tolist()
        (folder / _EXAMPLE).write_text(json.dumps(rows))
        (folder / _SERVING_EXAMPLE).write_text(json.dumps({"inputs": rows}, indent=2))
        return folder


def model_parts(network: Network, example: Any) -> ModelParts:
    """`network` as served (raw rows in, class probabilities out), with its example and code."""
    import inspect

    import torch

    import mlflow_tune
    from mlflow_tune.training.models import Probabilities

    served = Probabilities(network).cpu().eval()
    with torch.no_grad():
        output = served(torch.as_tensor(example)).numpy()
    buffer = io.BytesIO()
    torch.save(served, buffer)
    code = [str(Path(mlflow_tune.__file__).parent)]
    source = getattr(inspect.getmodule(type(network.body)), "__file__", None)
    if source and not str(source).startswith(code[0]) and "site-packages" not in str(source):
        code.append(str(source))   # a user's model module
    return ModelParts(buffer.getvalue(), example, output, tuple(code))


_templates: _Templates | None = None
_templates_lock = threading.Lock()


@functools.cache
def requirements() -> tuple[str, ...]:
    """Pinned to what trained the model; inferring them spawns a subprocess (~8 s). Read once:
    each package-metadata lookup costs a few ms, on every model otherwise."""
    from importlib.metadata import version

    return (f"torch=={version('torch').split('+')[0]}", f"numpy=={version('numpy')}",
            f"cloudpickle=={version('cloudpickle')}")


def log_model(client: MlflowClient, run_id: str, parts: ModelParts, name: str = "model",
              experiment_id: str = "") -> str:
    """Log `parts` as an MLflow PyTorch model of run `run_id`; returns its `models:/ID` URI."""
    global _templates
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model, infer_signature

    with _templates_lock:
        if _templates is None:
            _templates = _Templates()
            atexit.register(shutil.rmtree, _templates.root, ignore_errors=True)
    signature = infer_signature(parts.example, parts.output)
    template = _templates.get(parts, signature, requirements())
    experiment_id = experiment_id or client.get_run(run_id).info.experiment_id
    logged = client.create_logged_model(experiment_id, name=name, source_run_id=run_id)
    try:
        mlmodel = Model.from_dict(template.mlmodel)
        mlmodel.run_id, mlmodel.model_uuid, mlmodel.model_id = run_id, logged.model_id, logged.model_id
        mlmodel.artifact_path = logged.artifact_location
        mlmodel.utc_time_created = str(datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None))
        folder = _templates.stage(template, parts, mlmodel)
        mlmodel.model_size_bytes = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        mlmodel.save(str(folder / "MLmodel"))   # after the size: MLflow counts the rest too
        try:
            client.log_model_artifacts(logged.model_id, str(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return f"models:/{logged.model_id}"
