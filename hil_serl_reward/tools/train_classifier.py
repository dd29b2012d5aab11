"""train_classifier: hil-serl classifier_data pickles -> a checkpoint the node serves.

    train_classifier --data classifier_data/ --image-keys wrist_1 front \
        [--resnet10 ~/.serl/resnet10_params.pkl | --random-init] \
        [--backbone shared|independent] [--fine-tune] [--output classifier_ckpt/]

Follows upstream's recipe by default (128 + 128 balanced batches with replacement, 4-pixel
random crops shared across cameras, sigmoid BCE, Adam 1e-4, 150 steps) and adds a held-out
validation split with accuracy/precision/recall, a suggested threshold and a seed. Writes
the legacy flax msgpack checkpoint upstream's load_classifier_func restores, plus a sidecar
with the camera order, options, crops, threshold suggestion and metrics.
"""
import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from hil_serl_reward.data.classifier_data import ClassifierDataError, load_classifier_data
from hil_serl_reward.model import safe_pickle
from hil_serl_reward.model.atomic_files import check_writable
from hil_serl_reward.model.checkpoint import CheckpointError, save_checkpoint
from hil_serl_reward.model.metrics import describe_suggestion, suggest_threshold
from hil_serl_reward.model.pretrained import (
    DEFAULT_RESNET10_PATH, PretrainedWeightsError, apply_resnet10_weights, load_resnet10_weights)
from hil_serl_reward.model.reward_classifier import (
    BACKBONES, ClassifierSpec, count_params, init_params)
from hil_serl_reward.model.training import (
    Recipe, balanced_batches, create_state, evaluate, make_predict, split, train)
from hil_serl_reward.ros.params_file import read_node_parameters


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='train_classifier', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', type=Path, nargs='+', required=True,
                        help='classifier_data/ folder(s) with *success*.pkl / *failure*.pkl')
    parser.add_argument('--image-keys', nargs='+', required=True,
                        help='camera keys, in the order the node will list them')
    parser.add_argument('--output', type=Path, default=Path('classifier_ckpt'))
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument('--resnet10', type=Path, default=DEFAULT_RESNET10_PATH,
                         help=f'ImageNet ResNet-10 weights (default {DEFAULT_RESNET10_PATH})')
    weights.add_argument('--random-init', action='store_true',
                         help='random backbone instead of ImageNet weights (tests, demos)')
    parser.add_argument('--backbone', choices=BACKBONES, default='shared')
    tune = parser.add_mutually_exclusive_group()
    tune.add_argument('--frozen', dest='frozen', action='store_true', default=True,
                      help='frozen backbone (default, as hil-serl)')
    tune.add_argument('--fine-tune', dest='frozen', action='store_false',
                      help='train the backbone too')
    parser.add_argument('--steps', type=int, default=Recipe.steps,
                        help=f'gradient steps (upstream: {Recipe.steps})')
    parser.add_argument('--batch-per-class', type=int, default=Recipe.batch_per_class,
                        help='successes and failures per batch (upstream: '
                        f'{Recipe.batch_per_class} + {Recipe.batch_per_class})')
    parser.add_argument('--learning-rate', type=float, default=Recipe.learning_rate)
    parser.add_argument('--val-fraction', type=float, default=0.2,
                        help='held-out share of each class (0 = none, as upstream)')
    parser.add_argument('--eval-every', type=int, default=25)
    parser.add_argument('--target-precision', type=float, default=0.95,
                        help='suggest a threshold: the middle of the margin where validation '
                        'precision first reaches this')
    parser.add_argument('--params-file', type=Path,
                        help='node params YAML whose crops are recorded in the sidecar')
    parser.add_argument('--seed', type=int, default=Recipe.seed)
    safe_pickle.add_trust_argument(parser, 'data and weights files')
    args = parser.parse_args(argv)
    if not 0 <= args.val_fraction < 1:
        parser.error('--val-fraction must be in [0, 1)')
    return args


def describe_start(spec: ClassifierSpec, params: Dict[str, Any], log) -> None:
    total = count_params(params)
    backbone = sum(count_params(params['encoder_def'][f'encoder_{k}']['pretrained_encoder'])
                   for k in spec.backbone_owners)
    trainable = total - backbone if spec.frozen else total
    owners = ', '.join(f'encoder_{k}/pretrained_encoder' for k in spec.backbone_owners)
    sharing = (f' (shared by {list(spec.image_keys)}: Flax keeps it under the '
               f'lexicographically smallest key)' if spec.backbone == 'shared'
               and len(spec.image_keys) > 1 else '')
    log(f'backbone: {owners}{sharing}; '
        f"{'frozen' if spec.frozen else 'fine-tuned'}")
    log(f'parameters: {total:,} in all, {trainable:,} trainable')


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    log = lambda message: print(f'train_classifier: {message}', flush=True)  # noqa: E731
    spec = ClassifierSpec(tuple(args.image_keys), backbone=args.backbone, frozen=args.frozen)
    try:
        parts = [load_classifier_data(folder, spec.image_keys, args.trust_pickles)
                 for folder in args.data]
        images = {k: np.concatenate([p[0][k] for p in parts]) for k in spec.image_keys}
        labels = np.concatenate([p[1] for p in parts])
        weights = (None if args.random_init
                   else load_resnet10_weights(args.resnet10, args.trust_pickles))
        crops = ({k: read_node_parameters(args.params_file).get(f'cameras.{k}.crop', '')
                  for k in spec.image_keys} if args.params_file else None)
        check_writable(args.output)
    except (ClassifierDataError, PretrainedWeightsError, ValueError, OSError) as exc:
        print(f'train_classifier: {exc}', file=sys.stderr)
        return 2
    log(f'{int(labels.sum())} successes, {int((labels == 0).sum())} failures')
    (train_images, train_labels), (val_images, val_labels) = split(
        images, labels, args.val_fraction, args.seed)
    params = init_params(spec, args.seed)
    if weights is None:
        log('random backbone (--random-init): no ImageNet weights')
    else:
        params = apply_resnet10_weights(params, spec, weights, log=log)
    describe_start(spec, params, log)
    recipe = Recipe(args.steps, args.batch_per_class, args.learning_rate, seed=args.seed)
    predict = make_predict(spec)
    history: List[Dict[str, Any]] = []
    bar = tqdm(total=recipe.steps, desc='train', unit='step', file=sys.stdout)

    def on_step(step: int, loss: float, state: Any) -> None:
        bar.update(1)
        bar.set_postfix(loss=f'{loss:.4f}')
        if len(val_labels) and (step % args.eval_every == 0 or step == recipe.steps):
            m = evaluate(predict, state.params, val_images, val_labels)
            history.append({'step': step, 'loss': loss, **m.as_dict()})
            bar.write(f'step {step}: loss {loss:.4f}, validation accuracy {m.accuracy:.3f}, '
                      f'precision {m.precision:.3f}, recall {m.recall:.3f}')

    state = train(create_state(spec, params, recipe.learning_rate),
                  balanced_batches(train_images, train_labels, recipe.batch_per_class, args.seed),
                  recipe, on_step)
    bar.close()
    metadata: Dict[str, Any] = {'seed': args.seed, 'steps': recipe.steps,
                                'train_samples': int(len(train_labels)),
                                'validation_samples': int(len(val_labels)),
                                'validation_history': history}
    if crops is not None:
        metadata['crops'] = crops
    if len(val_labels):
        probabilities = predict(state.params, val_images)
        chosen = suggest_threshold(probabilities, val_labels, args.target_precision)
        metadata['threshold_suggestion'] = None if chosen is None else chosen.threshold
        metadata['threshold_suggestion_precision_target'] = args.target_precision
        if chosen is not None:
            metadata['threshold_suggestion_validation'] = chosen.as_dict()
        log(f'validation: {describe_suggestion(chosen, args.target_precision)}')
    try:
        path = save_checkpoint(args.output, state.params, spec, step=int(state.step),
                               opt_state=state.opt_state, metadata=metadata, overwrite=True)
    except (CheckpointError, OSError) as exc:
        print(f'train_classifier: the checkpoint was NOT written to {args.output} '
              f'(the folder is as it was): {exc}', file=sys.stderr)
        return 1
    log(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
