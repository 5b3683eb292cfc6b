"""At the hub: ask every site for its features' range, then for sums and histograms on
common bins; pool what the sites released. The result is one line, ``RESULT {json}``, in
the run's log (``flwr log RUN``)."""

from __future__ import annotations

import json
import time
from typing import Any

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

app = ServerApp()


def nodes(grid: Grid, wanted: int, timeout: float) -> list[int]:
    """The connected sites, once ``wanted`` are there (or all there are at ``timeout``)."""
    end = time.monotonic() + timeout
    while True:
        found = list(grid.get_node_ids())
        if len(found) >= wanted or time.monotonic() > end:
            return found
        time.sleep(0.5)


def ask(
    grid: Grid, to: list[int], kind: str, question: dict[str, Any], timeout: float
) -> tuple[dict[int, Message], dict[int, str]]:
    """Each site's released reply, and the reason of each that released nothing."""
    sent = [
        Message(RecordDict({"question": ConfigRecord(question)}), dst_node_id=n, message_type=kind)
        for n in to
    ]
    released: dict[int, Message] = {}
    refused: dict[int, str] = {}
    for reply in grid.send_and_receive(sent, timeout=timeout):
        node = reply.metadata.src_node_id
        if reply.has_error():
            refused[node] = reply.error.reason or "an error without a reason"
        else:
            released[node] = reply
    for n in to:
        if n not in released and n not in refused:
            refused[n] = f"no reply within {timeout:g} s"
    return released, refused


def _number(value: object) -> float:
    if not isinstance(value, int | float):
        raise TypeError(f"a site released {value!r} where a number belongs")
    return float(value)


def _name(reply: Message) -> str:
    return str(reply.content.config_records["site"]["name"])


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    features = [f.strip() for f in str(config["features"]).split(",") if f.strip()]
    bins, timeout = int(_number(config["bins"])), _number(config["timeout"])
    question: dict[str, Any] = {"features": features, "modality": str(config["modality"])}
    to = nodes(grid, int(_number(config["min-sites"])), timeout)
    ranges, refused = ask(grid, to, "query.range", question, timeout)
    result: dict[str, Any] = {"sites": {}, "refused": {}, "pooled": None}
    if ranges:
        for f in features:  # common bins over every released (widened) range
            found = [r.content.metric_records["statistics"] for r in ranges.values()]
            question[f"low.{f}"] = min(float(_number(s[f"min.{f}"])) for s in found)
            question[f"high.{f}"] = max(float(_number(s[f"max.{f}"])) for s in found)
        question["bins"] = bins
        answers, late = ask(grid, list(ranges), "query.statistics", question, timeout)
        refused.update(late)
        pooled: dict[str, Any] = {"count": 0}
        for reply in answers.values():
            stats = dict(reply.content.metric_records["statistics"])
            result["sites"][_name(reply)] = stats
            pooled["count"] += int(_number(stats["count"]))
            for f in features:
                pooled[f"sum.{f}"] = pooled.get(f"sum.{f}", 0.0) + float(_number(stats[f"sum.{f}"]))
                counts = stats[f"hist.{f}"]
                hist = [int(c) for c in counts] if isinstance(counts, list) else [int(counts)]
                old = pooled.get(f"hist.{f}", [0] * bins)
                pooled[f"hist.{f}"] = [a + b for a, b in zip(old, hist, strict=True)]
        for f in features:
            if pooled["count"]:
                pooled[f"mean.{f}"] = pooled[f"sum.{f}"] / pooled["count"]
            pooled[f"edges.{f}"] = [
                question[f"low.{f}"] + i * (question[f"high.{f}"] - question[f"low.{f}"]) / bins
                for i in range(bins + 1)
            ]
        result["pooled"] = pooled
    result["refused"] = {str(node): why for node, why in refused.items()}
    print("RESULT " + json.dumps(result), flush=True)
