"""At the hub: FedAvg (Flower's strategy) over every site for ``num-rounds`` rounds from
zero weights; the result is one line, ``RESULT {json}``, in the run's log."""

from __future__ import annotations

import json

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from giftcloud_fedavg.model import SIZE

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    sites = int(config["min-sites"])
    strategy = FedAvg(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=sites,
        min_available_nodes=sites,
    )
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord([np.zeros(SIZE)]),
        num_rounds=int(config["num-rounds"]),
        timeout=float(config["timeout"]),
        train_config=ConfigRecord(
            {
                "lr": float(config["lr"]),
                "local-steps": int(config["local-steps"]),
                "modality": str(config["modality"]),
            }
        ),
    )
    # no round aggregated anything when every site withheld its updates (its budget, its
    # k): the weights are where they started, and no round has metrics
    found = result.arrays.to_numpy_ndarrays()
    weights = found[0] if found else np.zeros(SIZE)
    rounds = {str(r): dict(m) for r, m in result.train_metrics_clientapp.items()}
    print("RESULT " + json.dumps({"weights": weights.tolist(), "rounds": rounds}), flush=True)
