"""Binary classification metrics and threshold choice (evaluate, train_classifier)."""
import dataclasses
from typing import Dict, Optional

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
    """Decision = probability > threshold, as the reward node decides."""
    predicted = np.asarray(probabilities) > threshold
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
