"""Binary classification metrics and threshold choice (evaluate, train_classifier)."""
import dataclasses
from typing import Any, Dict, Optional, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class BinaryMetrics:
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fp + self.tn + self.fn
        return (self.tp + self.tn) / total if total else float('nan')

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float('nan')

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float('nan')

    def as_dict(self) -> Dict[str, float]:
        return {'threshold': self.threshold, 'accuracy': self.accuracy,
                'precision': self.precision, 'recall': self.recall,
                'confusion': {'tn': self.tn, 'fp': self.fp, 'fn': self.fn, 'tp': self.tp}}

    def confusion_table(self) -> str:
        return ('              predicted 0  predicted 1\n'
                f'  actual 0    {self.tn:11d}  {self.fp:11d}\n'
                f'  actual 1    {self.fn:11d}  {self.tp:11d}')


def binary_metrics(probabilities: np.ndarray, labels: np.ndarray,
                   threshold: float) -> BinaryMetrics:
    """Decision = probability > threshold in float32, as the reward node decides
    (pipeline/decision.py)."""
    predicted = np.asarray(probabilities, np.float32) > np.float32(threshold)
    actual = np.asarray(labels).astype(bool)
    return BinaryMetrics(threshold, int(np.sum(predicted & actual)),
                         int(np.sum(predicted & ~actual)), int(np.sum(~predicted & ~actual)),
                         int(np.sum(~predicted & actual)))


def threshold_for_precision(probabilities: np.ndarray, labels: np.ndarray,
                            target: float) -> Optional[BinaryMetrics]:
    """The lowest threshold whose precision reaches `target` (most recall at that precision).

    Candidates are the observed probabilities (decision p > t); None when no threshold with
    at least one positive decision reaches the target.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    for threshold in np.unique(np.concatenate([[0.0], probabilities])):
        metrics = binary_metrics(probabilities, labels, float(threshold))
        if metrics.tp + metrics.fp and metrics.precision >= target:
            return metrics
    return None


@dataclasses.dataclass(frozen=True)
class ThresholdSuggestion:
    """Where to put the threshold, and what it gives on the data it was chosen on."""

    threshold: float
    margin: Tuple[float, float]        # every threshold in [low, high) decides the same here
    at_suggestion: BinaryMetrics
    at_half: BinaryMetrics             # the usual default, 0.5, for comparison
    target_precision: float

    def as_dict(self) -> Dict[str, Any]:
        return {'threshold': self.threshold, 'margin': list(self.margin),
                'target_precision': self.target_precision,
                'at_suggestion': self.at_suggestion.as_dict(), 'at_0.5': self.at_half.as_dict()}


def describe_suggestion(chosen: Optional['ThresholdSuggestion'], target_precision: float) -> str:
    if chosen is None:
        return f'no threshold reaches precision {target_precision:g}'
    s, h = chosen.at_suggestion, chosen.at_half
    low, high = chosen.margin
    return (f'suggested threshold {chosen.threshold:.4f}: the middle of [{low:.4f}, {high:.4f}), '
            f'where precision first reaches {target_precision:g}; there precision '
            f'{s.precision:.3f}, recall {s.recall:.3f}; at 0.5 precision {h.precision:.3f}, '
            f'recall {h.recall:.3f}')


def suggest_threshold(probabilities: np.ndarray, labels: np.ndarray,
                      target_precision: float) -> Optional[ThresholdSuggestion]:
    """The middle of the margin at the precision target.

    Of the decisions (p > t) whose precision reaches `target_precision`, take those with the
    most recall, and of these the most precise: the highest such t, which sits on a sample.
    Every threshold from it up to the next observed probability decides the same on this data;
    the suggestion is the middle of that gap. On well-separated classes that is halfway
    between the highest failure and the lowest success, where a person would put it (the
    lowest threshold reaching the target lies among the failures: 0.0049 on the demo's
    data); on overlapping classes the gap is narrow and the precision target holds. None when
    no threshold with at least one positive decision reaches the target.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    actual = np.asarray(labels).astype(bool)
    candidates = np.unique(np.concatenate([[0.0], probabilities]))
    positives, negatives = np.sort(probabilities[actual]), np.sort(probabilities[~actual])
    tp = positives.size - np.searchsorted(positives, candidates, side='right')
    fp = negatives.size - np.searchsorted(negatives, candidates, side='right')
    decided = tp + fp
    precision = np.divide(tp, decided, out=np.zeros(len(candidates)), where=decided > 0)
    reaching = (decided > 0) & (precision >= target_precision)
    if not reaching.any():
        return None
    most_recall = reaching & (tp == tp[reaching].max())
    low = float(candidates[most_recall].max())
    above = probabilities[probabilities > low]
    high = float(above.min()) if above.size else 1.0
    threshold = (low + high) / 2
    return ThresholdSuggestion(threshold, (low, high),
                               binary_metrics(probabilities, labels, threshold),
                               binary_metrics(probabilities, labels, 0.5), target_precision)
