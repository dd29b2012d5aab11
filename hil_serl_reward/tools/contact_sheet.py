"""Review pictures for evaluate (no ROS): the classifier's worst mistakes and the sets it was
least sure of, as the model saw them, on one PNG a person can look through.

Rows: false positives (failures with the highest probability above the threshold), false
negatives (successes with the lowest probability at or below it), and the sets nearest the
threshold. Each tile is one set: its cameras' 128x128 model inputs side by side, captioned with
the probability and the set's stamp (or sample index).
"""
import dataclasses
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

CAPTION = 30
PAD = 6
BACKGROUND = (24, 24, 24)
TEXT = (230, 230, 230)


@dataclasses.dataclass(frozen=True)
class Row:
    title: str
    indices: List[int]          # positions in the evaluated arrays, worst first


def review_rows(probabilities: np.ndarray, labels: Optional[np.ndarray], threshold: float,
                per_row: int = 8) -> List[Row]:
    """Which sets go on the sheet: the worst false positives and false negatives (with
    labels), and the sets nearest the threshold."""
    p = np.asarray(probabilities)
    rows = []
    if labels is not None:
        labels = np.asarray(labels).astype(bool)
        false_positive = np.flatnonzero(~labels & (p > threshold))
        false_negative = np.flatnonzero(labels & (p <= threshold))
        rows.append(Row('false positives (failures above the threshold), worst first',
                        list(false_positive[np.argsort(-p[false_positive])][:per_row])))
        rows.append(Row('false negatives (successes at or below the threshold), worst first',
                        list(false_negative[np.argsort(p[false_negative])][:per_row])))
    nearest = np.argsort(np.abs(p - threshold), kind='stable')[:per_row]
    rows.append(Row(f'nearest the threshold {threshold:g}', list(nearest)))
    return rows


def contact_sheet(images: Dict[str, np.ndarray], keys: Sequence[str], probabilities: np.ndarray,
                  index: np.ndarray, index_name: str, rows: Sequence[Row],
                  per_row: int = 8) -> np.ndarray:
    """RGB uint8: one titled strip per row, one tile per set (empty rows say so)."""
    size = next(iter(images.values())).shape[1]
    tile_w, tile_h = size * len(keys), size + CAPTION
    width = PAD + per_row * (tile_w + PAD)
    strips = []
    for row in rows:
        strip = np.full((24 + (tile_h + PAD if row.indices else 0), width, 3), BACKGROUND,
                        np.uint8)
        title = row.title if row.indices else f'{row.title}: none'
        cv2.putText(strip, title, (PAD, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT, 1,
                    cv2.LINE_AA)
        for slot, i in enumerate(row.indices):
            left = PAD + slot * (tile_w + PAD)
            strip[24:24 + size, left:left + tile_w] = np.concatenate(
                [images[k][i] for k in keys], axis=1)
            label = (f'{int(index[i]) / 1e9:.3f} s' if index_name == 'stamp_ns'
                     else f'#{int(index[i])}')
            cv2.putText(strip, f'p={probabilities[i]:.3f} {label}',
                        (left + 2, 24 + size + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.42, TEXT, 1,
                        cv2.LINE_AA)
        strips.append(strip)
    return np.concatenate(strips, axis=0)
