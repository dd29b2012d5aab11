"""The success decision, made as hil-serl makes it: binary and n-way.

hil-serl's reward functions compare `sigmoid(classifier(obs))`, a float32 JAX value, with a
Python float: JAX's weak typing makes that a float32 comparison. Compared in float64, a
probability of exactly float32(0.85) is above 0.85 and upstream's is not, so every decision
here (the node, the wrapper's default rule) compares in float32.
"""
from typing import Sequence, Tuple

import numpy as np


def above_threshold(probability: float, threshold: float) -> bool:
    return bool(np.float32(probability) > np.float32(threshold))


def winning_target(probabilities: Sequence[float], targets: Sequence[int],
                   min_confidence: float) -> Tuple[bool, int]:
    """n-way (hil-serl's egg_flip): the winning class (argmax) and whether it is one of
    `targets` with a probability of at least `min_confidence` (upstream's egg wrapper takes
    the argmax when its confidence is >= 0.9), compared in float32."""
    winner = int(np.argmax(probabilities))
    confident = np.float32(probabilities[winner]) >= np.float32(min_confidence)
    return bool(winner in targets and confident), winner
