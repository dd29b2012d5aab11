"""evaluate: run a checkpoint offline and see how `threshold` behaves before trusting it.

    evaluate CKPT --classifier-data classifier_data/ [--image-keys wrist_1 front]
    evaluate CKPT --bag recording/ --params-file rig.yaml [--label-topic scene_success]

Writes a CSV (stamp or sample index, probability, decision, label), a PNG plot of the
probability over time with the threshold line, and review.png: the worst false positives and
false negatives and the sets nearest the threshold, as the model saw them (contact_sheet.py).
With labels (classifier_data file names or a std_msgs/Bool label topic in the bag) it prints
accuracy, precision, recall, the confusion matrix and a suggested threshold
(metrics.suggest_threshold: the middle of the margin where precision first reaches
--target-precision), with precision and recall there and at 0.5.
"""
import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from hil_serl_reward.data.classifier_data import ClassifierDataError, load_classifier_data
from hil_serl_reward.model import safe_pickle
from hil_serl_reward.model.atomic_files import check_writable
from hil_serl_reward.model.checkpoint import CheckpointError
from hil_serl_reward.model.inference import RewardClassifier
from hil_serl_reward.model.metrics import binary_metrics, describe_suggestion, suggest_threshold
from hil_serl_reward.model.xla_flags import use_cpu_ynn_fusions, use_gpu_command_buffers
from hil_serl_reward.pipeline.camera_set import (
    CameraSetError, CameraSetPreprocessor, set_stamp)
from hil_serl_reward.pipeline.image_conversion import ImageError, validate
from hil_serl_reward.pipeline.stamps import stamp_to_ns
from hil_serl_reward.pipeline.sync_slop import SlopPolicy
from hil_serl_reward.pipeline.synchronizer import ApproximateTimeSync
from hil_serl_reward.ros import config
from hil_serl_reward.ros.cv_bridge_probe import make_converter
from hil_serl_reward.ros.params_file import read_node_parameters
from hil_serl_reward.tools.contact_sheet import contact_sheet, review_rows
from hil_serl_reward.tools.output_files import write_png


def predict_batches(classifier: RewardClassifier, images: Dict[str, np.ndarray],
                    batch: int = 32) -> np.ndarray:
    count = len(next(iter(images.values())))
    out = [classifier.predict({k: v[i:i + batch] for k, v in images.items()}).probabilities
           for i in range(0, count, batch)]
    return np.concatenate(out) if out else np.zeros(0)


def bag_samples(bag: Path, params: Dict[str, Any], label_topic: Optional[str]
                ) -> Tuple[Dict[str, np.ndarray], np.ndarray, Optional[np.ndarray], int]:
    """Synchronised, preprocessed camera sets of a recording, as the node would see them."""
    from hil_serl_reward.ros.bags import read_messages
    values = config.with_defaults(params)
    keys = list(values['image_keys'])
    cameras = config.cameras_from(values)
    index_of = {'/' + c.topic.lstrip('/'): i for i, c in enumerate(cameras)}
    sets: List[Tuple[Tuple[Any, ...], int]] = []
    arrivals: List[int] = []
    slop = SlopPolicy(float(values['sync_slop']), len(keys))     # the node's rule, auto too
    sync = ApproximateTimeSync(len(keys), int(values['sync_queue_size']), slop.slop_s,
                               lambda msgs, stamps: sets.append((msgs, set_stamp(stamps))))
    label_times: List[Tuple[int, bool]] = []
    skipped = 0
    wanted = list(index_of) + ([label_topic] if label_topic else [])
    for topic, received, msg in read_messages(bag, wanted):
        if topic == label_topic:
            label_times.append((received, bool(msg.data)))
            continue
        index = index_of[topic]
        try:
            size = validate(msg, int(values['max_image_pixels']))
        except ImageError:
            skipped += 1
            continue
        if cameras[index].frame_size not in (None, size):      # the node refuses it too
            skipped += 1
            continue
        stamp = stamp_to_ns(msg.header.stamp)
        if slop.observe(index, stamp) is not None:
            sync.set_slop(slop.slop_s)
        sync.add(index, stamp, msg)
        arrivals += [received] * (len(sets) - len(arrivals))
    preprocessor = CameraSetPreprocessor(cameras, make_converter(int(values['max_image_pixels'])))
    images: Dict[str, List[np.ndarray]] = {k: [] for k in keys}
    stamps, set_arrivals = [], []
    for (msgs, stamp), received in zip(sets, arrivals):
        try:
            processed = preprocessor(msgs)
        except CameraSetError:
            skipped += 1
            continue
        for k in keys:
            images[k].append(processed[k])
        stamps.append(stamp)
        set_arrivals.append(received)
    labels = None
    if label_times:
        times = np.array([t for t, _ in label_times])
        values = np.array([v for _, v in label_times])
        nearest = [int(np.argmin(np.abs(times - t))) for t in set_arrivals]
        labels = values[nearest].astype(np.int32)
    stacked = {k: np.stack(v) if v else np.zeros((0, 128, 128, 3), np.uint8)
               for k, v in images.items()}
    return stacked, np.array(stamps, np.int64), labels, skipped


def write_csv(path: Path, index_name: str, index: np.ndarray, probabilities: np.ndarray,
              threshold: float, labels: Optional[np.ndarray]) -> None:
    with path.open('w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow([index_name, 'probability', 'decision'] + (['label'] if labels is not None
                                                                   else []))
        for i, (x, p) in enumerate(zip(index, probabilities)):
            row = [int(x), f'{p:.6f}', int(p > threshold)]
            writer.writerow(row + ([int(labels[i])] if labels is not None else []))


def plot(path: Path, x: np.ndarray, x_label: str, probabilities: np.ndarray, threshold: float,
         labels: Optional[np.ndarray]) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(10, 3.5))
    if labels is not None:
        ax.fill_between(x, 0, 1, where=labels.astype(bool), step='mid', color='tab:green',
                        alpha=0.15, label='labelled success')
    ax.plot(x, probabilities, lw=1.2, color='tab:blue', label='success probability')
    ax.axhline(threshold, color='tab:red', ls='--', lw=1, label=f'threshold {threshold:g}')
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(x_label)
    ax.set_ylabel('probability')
    ax.legend(loc='upper right', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='evaluate', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', help='classifier_ckpt/ folder or one checkpoint_<N>')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--classifier-data', type=Path, help="hil-serl classifier_data/ folder")
    source.add_argument('--bag', type=Path, help='rosbag2 recording of the camera topics')
    parser.add_argument('--params-file', type=Path,
                        help='node params YAML: image keys, topics, crops, slop (bag input)')
    parser.add_argument('--image-keys', nargs='+', help='camera order (default: sidecar or '
                        'params file)')
    parser.add_argument('--label-topic', help='std_msgs/Bool topic in the bag with labels')
    parser.add_argument('--threshold', type=float, default=0.5)
    parser.add_argument('--target-precision', type=float, default=0.95)
    parser.add_argument('--output', type=Path, default=Path('evaluation'),
                        help='folder for probabilities.csv and probability.png')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--json', action='store_true', help='print the metrics as JSON')
    safe_pickle.add_trust_argument(parser, 'data files')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    use_cpu_ynn_fusions()
    use_gpu_command_buffers()
    try:
        params = read_node_parameters(args.params_file) if args.params_file else {}
        keys = args.image_keys or params.get('image_keys')
        classifier = RewardClassifier.from_checkpoint(args.checkpoint, image_keys=keys,
                                                      device=args.device)
        keys = list(classifier.spec.image_keys)
        if classifier.spec.n_way != 2:
            raise ValueError(f"'{args.checkpoint}' is a {classifier.spec.n_way}-way classifier; "
                             f'evaluate scores binary success classifiers')
        for note in classifier.checkpoint.notes:
            print(f'evaluate: note: {note}', file=sys.stderr)
        if args.classifier_data:
            images, labels = load_classifier_data(args.classifier_data, keys,
                                                  args.trust_pickles)
            index, index_name, x_label, skipped = np.arange(len(labels)), 'sample', 'sample', 0
        else:
            images, index, labels, skipped = bag_samples(
                args.bag, {**params, 'image_keys': keys}, args.label_topic)
            index_name, x_label = 'stamp_ns', 'time since first set (s)'
        check_writable(args.output)
    except (CheckpointError, ClassifierDataError, ValueError, OSError) as exc:
        print(f'evaluate: {exc}', file=sys.stderr)
        return 2
    if len(index) == 0:
        print(f'evaluate: no usable samples ({skipped} skipped: images no conversion takes or '
              f'of another size than their camera\'s frame_size, sets refused at the crop)',
              file=sys.stderr)
        return 2
    probabilities = predict_batches(classifier, images)
    rows = review_rows(probabilities, labels, args.threshold)
    x = index if index_name == 'sample' else (index - index[0]) / 1e9
    try:
        write_csv(args.output / 'probabilities.csv', index_name, index, probabilities,
                  args.threshold, labels)
        plot(args.output / 'probability.png', x, x_label, probabilities, args.threshold, labels)
        write_png(args.output / 'review.png',
                  contact_sheet(images, keys, probabilities, index, index_name, rows))
    except OSError as exc:
        print(f'evaluate: writing to {args.output} failed: {exc}', file=sys.stderr)
        return 1
    report: Dict[str, Any] = {'samples': int(len(index)), 'skipped': int(skipped),
                              'threshold': args.threshold,
                              'csv': str(args.output / 'probabilities.csv'),
                              'plot': str(args.output / 'probability.png'),
                              'review': str(args.output / 'review.png'),
                              'review_rows': {row.title: [int(index[i]) for i in row.indices]
                                              for row in rows}}
    if labels is not None:
        metrics = binary_metrics(probabilities, labels, args.threshold)
        chosen = suggest_threshold(probabilities, labels, args.target_precision)
        report['metrics'] = metrics.as_dict()
        report['threshold_suggestion'] = (chosen.as_dict() if chosen else
                                          {'threshold': None,
                                           'target_precision': args.target_precision})
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['samples']} samples ({skipped} skipped); CSV {report['csv']}, "
          f"plot {report['plot']}, review pictures {report['review']}")
    if labels is not None:
        print(f'at threshold {args.threshold:g}: accuracy {metrics.accuracy:.3f}, precision '
              f'{metrics.precision:.3f}, recall {metrics.recall:.3f}')
        print(metrics.confusion_table())
        print(describe_suggestion(chosen, args.target_precision))
    return 0


if __name__ == '__main__':
    sys.exit(main())
