"""The model: logistic regression telling a series' patient sex "M" from the others by
two image-derived features, its mean intensity and the age at the study (both scaled)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from giftcloud_flower.data import Series

#: weights of intensity, age, and the bias
SIZE = 3


def design(series: Sequence[Series]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[(s.intensity - 400) / 300, ((s.age or 50) - 50) / 10, 1.0] for s in series])
    y = np.array([1.0 if s.sex == "M" else 0.0 for s in series])
    return x.reshape(-1, SIZE), y


def loss(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(1 / (1 + np.exp(-x @ w)), 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def step(w: np.ndarray, x: np.ndarray, y: np.ndarray, lr: float) -> np.ndarray:
    """One full-batch gradient step on the mean log-loss."""
    p = 1 / (1 + np.exp(-x @ w))
    result: np.ndarray = w - lr * (x.T @ (p - y)) / len(y)
    return result
