"""The success decision, made as hil-serl makes it.

hil-serl's reward functions compare `sigmoid(classifier(obs))`, a float32 JAX value, with a
Python float: JAX's weak typing makes that a float32 comparison. Compared in float64, a
probability of exactly float32(0.85) is above 0.85 and upstream's is not, so every decision
here (the node, the wrapper's default rule) compares in float32.
"""
import numpy as np


def above_threshold(probability: float, threshold: float) -> bool:
    return bool(np.float32(probability) > np.float32(threshold))
