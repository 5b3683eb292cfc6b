"""At a site: train the hub's weights on the site's series; reply the new weights and how
many series they came from (the site's gate releases it only when that is at least k)."""

from __future__ import annotations

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from giftcloud_flower.data import read
from giftcloud_flower.site import load

from giftcloud_fedavg.model import design, loss, step

app = ClientApp()


@app.train()
def train(message: Message, context: Context) -> Message:
    config = message.content.config_records["config"]
    w = message.content.array_records["arrays"].to_numpy_ndarrays()[0].astype(np.float64)
    x, y = design(read(load(), str(config["modality"]) or None))
    for _ in range(int(config["local-steps"])):  # type: ignore[arg-type]
        w = step(w, x, y, float(config["lr"]))  # type: ignore[arg-type]
    metrics = MetricRecord({"num-examples": len(y), "loss": loss(w, x, y)})
    return Message(RecordDict({"arrays": ArrayRecord([w]), "metrics": metrics}), reply_to=message)
