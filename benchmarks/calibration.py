"""Calibration measures shared by the model benchmarks: expected calibration error and temperature
scaling fitted (and judged) on validation texts only."""

from __future__ import annotations

import itertools

import numpy as np


def ece(proba: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    conf = proba.max(axis=1)
    right = proba.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(right[m].mean() - conf[m].mean())
    return round(float(total), 4)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The T minimising validation NLL of softmax(logits / T) (golden-section on log T)."""

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    a, b = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    for _ in range(80):
        c, d = b - g * (b - a), a + g * (b - a)
        if nll(c) < nll(d):
            b = d
        else:
            a = c
    return round(float(np.exp((a + b) / 2)), 4)


def temperature_helps(logits: np.ndarray, y: np.ndarray, folds: int = 2, seed: int = 0) -> bool:
    """Whether temperature scaling lowers ECE (by a tenth or more) on validation texts it was not
    fitted on.

    Cross-fitted on the validation set alone (each fold's T fitted on the other folds), so the
    decision to store a temperature never looks at the test set.
    """
    fold = np.arange(len(y)) % folds
    np.random.default_rng(seed).shuffle(fold)
    before, after = np.zeros((len(y), logits.shape[1])), np.zeros((len(y), logits.shape[1]))
    for f in range(folds):
        t = fit_temperature(logits[fold != f], y[fold != f])
        before[fold == f] = soft(logits[fold == f])
        after[fold == f] = soft(logits[fold == f] / t)
    return ece(after, y) < 0.9 * ece(before, y)  # by a tenth at least: not by noise


def soft(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
