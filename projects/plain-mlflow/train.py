"""A plain training script: scikit-learn's wine data, a small PyTorch MLP, metrics with mlflow.

Run by `mlflow run`, it logs into the run MLflow made for it (`train/loss`, `valid/loss`,
`valid/acc` per epoch). It also starts one nested run of its own, for its final evaluation.
"""

import argparse

import mlflow
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--learning-rate", type=float, default=0.01)
    ap.add_argument("--hidden", type=float, default=64)
    ap.add_argument("--epochs", type=float, default=30)
    args = ap.parse_args()
    x, y = load_wine(return_X_y=True)
    xt, xv, yt, yv = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    scaler = StandardScaler().fit(xt)
    xt, xv = (torch.as_tensor(scaler.transform(a), dtype=torch.float32) for a in (xt, xv))
    yt, yv = torch.as_tensor(yt), torch.as_tensor(yv)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(13, int(args.hidden)), torch.nn.ReLU(),
                                torch.nn.Linear(int(args.hidden), 3))
    opt = torch.optim.SGD(model.parameters(), lr=args.learning_rate)
    with mlflow.start_run():   # `mlflow run` made the run and logged the -P parameters
        for epoch in range(int(args.epochs)):
            model.train()
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt), yt)
            loss.backward()
            opt.step()
            model.eval()
            with torch.no_grad():
                logits = model(xv)
                valid = torch.nn.functional.cross_entropy(logits, yv).item()
                acc = (logits.argmax(1) == yv).float().mean().item()
            mlflow.log_metrics({"train/loss": loss.item(), "valid/loss": valid, "valid/acc": acc}, step=epoch)
        with mlflow.start_run(nested=True, run_name="final evaluation"):
            mlflow.log_metric("final/valid_acc", acc)


if __name__ == "__main__":
    main()
