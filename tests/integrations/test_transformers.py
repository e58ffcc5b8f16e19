"""Hugging Face's Trainer as a search trial: a tiny BERT built from a config (no weights are
downloaded) on generated token sequences, six trials in two workers, pruned through the callback,
every evaluation written once, the diagnosis read from the Trainer's names (eval_loss, eval_accuracy)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from mlflow import MlflowClient

import mlflow_tune as mt
from mlflow_tune.diagnostics.curves import LABELS
from mlflow_tune.tracking.runs import TAG, child_runs

pytestmark = pytest.mark.slow

HF_MODULE = '''
"""The user's Hugging Face script: label 1 when the first token is below 10."""
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from mlflow_tune.integrations.transformers import TuneCallback


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 20, (n, 8), generator=g)
        self.labels = (self.ids[:, 0] < 10).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(8, dtype=torch.long), "labels": self.labels[i]}


def accuracy(pred):
    return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


def fit(trial):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=2)
    args = TrainingArguments(output_dir=f"hf-out/trial-{trial.number}", num_train_epochs=5,
                             learning_rate=float(trial.params["lr"]), per_device_train_batch_size=32,
                             eval_strategy="epoch", logging_strategy="epoch", save_strategy="no",
                             report_to=[], use_cpu=True, disable_tqdm=True, seed=0)
    Trainer(BertForSequenceClassification(config), args, train_dataset=Tokens(320, 0), eval_dataset=Tokens(160, 1),
            compute_metrics=accuracy, callbacks=[TuneCallback(trial)]).train()
'''


@pytest.fixture
def hf_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "hftrain.py").write_text(HF_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    sys.modules.pop("hftrain", None)
    yield


def test_a_hugging_face_trainer_search_in_two_workers(tracking_uri: str, hf_module: None) -> None:
    import hftrain

    # grid: a spread of learning rates from too small to move to fine; the small ones are pruned
    out = mt.optimize(hftrain.fit, {"lr": {"choice": [3e-3, 1e-2, 1e-6, 2e-6, 3e-6, 5e-3]}}, metric="eval_loss",
                      algo="grid", max_trials=6, parallel=2, pruning="median", pruning_warmup=3,
                      min_trials_for_pruning=2, tracking_uri=tracking_uri, progress=False)
    client = MlflowClient(tracking_uri)
    trials = [r for r in child_runs(client, out.experiment_id, out.parent_run_id)
              if r.data.tags.get(TAG + "role") == "trial"]
    assert len(trials) == 6, [(o.tid, o.status, o.error) for o in out.trials]
    status = {o.tid: o.status for o in out.trials}
    assert "pruned" in status.values() and "failed" not in status.values(), status
    for run in trials:
        for key in ("eval_loss", "eval_accuracy", "loss"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert steps and len(steps) == len(set(steps)), (key, steps)   # once per evaluation
        assert not any(k.endswith("_runtime") for k in run.data.metrics)
        assert run.data.tags[TAG + "diagnosis"] in LABELS, run.data.tags.get(TAG + "diagnosis.evidence")
    best = out.best
    assert best is not None and best.objective is not None and best.objective < 0.69   # better than chance, ln 2
