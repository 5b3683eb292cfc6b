"""At a site: the range, then the sums and histograms, of its series' features. The
site's gate puts its disclosure control around each reply (k, bins, widened range)."""

from __future__ import annotations

import numpy as np
from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from giftcloud_flower.data import Series, read
from giftcloud_flower.site import load

app = ClientApp()


def _values(message: Message) -> tuple[list[str], dict[str, np.ndarray], int]:
    asked = message.content.config_records["question"]
    features = [str(f) for f in asked["features"]]  # type: ignore[union-attr]
    series: list[Series] = read(load(), str(asked["modality"]) or None)
    values = {}
    for f in features:
        found = [s.feature(f) for s in series]
        values[f] = np.array([v for v in found if v is not None], dtype=np.float64)
    return features, values, len(series)


@app.query("range")
def value_range(message: Message, context: Context) -> Message:
    features, values, n = _values(message)
    stats = MetricRecord({"count": n})
    for f in features:
        if len(values[f]) != n:
            raise ValueError(f"{n - len(values[f])} series have no {f}")
        if n:  # none: the count alone, which the site's rule then withholds
            stats[f"min.{f}"], stats[f"max.{f}"] = float(values[f].min()), float(values[f].max())
    return Message(RecordDict({"statistics": stats}), reply_to=message)


@app.query("statistics")
def statistics(message: Message, context: Context) -> Message:
    features, values, n = _values(message)
    asked = message.content.config_records["question"]
    bins = int(asked["bins"])  # type: ignore[arg-type]
    stats = MetricRecord({"count": n})
    for f in features:
        if len(values[f]) != n:
            raise ValueError(f"{n - len(values[f])} series have no {f}")
        low, high = float(asked[f"low.{f}"]), float(asked[f"high.{f}"])  # type: ignore[arg-type]
        index = np.clip(((values[f] - low) / (high - low) * bins).astype(int), 0, bins - 1)
        stats[f"sum.{f}"] = float(values[f].sum())
        stats[f"hist.{f}"] = [int(c) for c in np.bincount(index, minlength=bins)]
    return Message(RecordDict({"statistics": stats}), reply_to=message)
