"""inspect_checkpoint: parameter tree, backbone owner, counts and sharing checks.

    inspect_checkpoint classifier_ckpt/ [--image-keys wrist_1 front] [--json]
    inspect_checkpoint --image-keys wrist_1 front [--backbone independent] [--fine-tune]
"""
import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence

import jax
import numpy as np

from hil_serl_reward.model import safe_pickle
from hil_serl_reward.model.checkpoint import CheckpointError, describe, load_checkpoint
from hil_serl_reward.model.introspection import run_checks
from hil_serl_reward.model.pretrained import (
    PretrainedWeightsError, apply_resnet10_weights, load_resnet10_weights)
from hil_serl_reward.model.reward_classifier import (
    BACKBONES, ClassifierSpec, Params, count_params, expected_param_count, init_params)


def module_summary(tree: Params) -> Dict[str, Any]:
    """{module: {'params': n, 'shapes': {param: shape}}} one level below `tree`."""
    summary = {}
    for name, sub in tree.items():
        shapes = {'/'.join(str(getattr(p, 'key', p)) for p in path): list(np.shape(leaf))
                  for path, leaf in jax.tree_util.tree_flatten_with_path(sub)[0]}
        summary[name] = {'params': count_params(sub), 'shapes': shapes}
    return summary


def report(spec: ClassifierSpec, params: Params, source: str, checks: bool,
           notes: Sequence[str] = ()) -> Dict[str, Any]:
    encoders = {name: module_summary(sub) for name, sub in params['encoder_def'].items()}
    head = module_summary({k: v for k, v in params.items() if k != 'encoder_def'})
    result = {
        'source': source,
        'model': describe(spec),
        'image_keys': list(spec.image_keys),
        'backbone': spec.backbone,
        'frozen': spec.frozen,
        'n_way': spec.n_way,
        'backbone_owners': [f'encoder_{k}/pretrained_encoder' for k in spec.backbone_owners],
        'param_count': count_params(params),
        'expected_param_count': expected_param_count(len(spec.image_keys), spec.backbone,
                                                     spec.n_way),
        'encoders': encoders,
        'head': head,
        'notes': list(notes),
    }
    if checks:
        result['checks'] = [vars(c) for c in run_checks(spec, params)]
    return result


def format_text(result: Dict[str, Any]) -> str:
    lines = [f"{result['source']}: {result['model']}",
             f"backbone owner(s): {', '.join(result['backbone_owners'])}"]
    if result['backbone'] == 'shared' and len(result['image_keys']) > 1:
        lines.append('  (Flax stores a shared backbone once, under the lexicographically smallest '
                     'camera key; every other camera runs those same params)')
    for name, modules in result['encoders'].items():
        total = sum(m['params'] for m in modules.values())
        lines.append(f'encoder_def/{name}: {total:,} params')
        for module, info in modules.items():
            lines.append(f"  {module}: {info['params']:,}")
    for module, info in result['head'].items():
        lines.append(f"{module}: {info['params']:,} {list(info['shapes'].values())}")
    lines.append(f"total parameters: {result['param_count']:,} "
                 f"(formula: {result['expected_param_count']:,})")
    lines += [f'note: {n}' for n in result['notes']]
    for check in result.get('checks', []):
        lines.append(f"[{'PASS' if check['passed'] else 'FAIL'}] {check['name']}: "
                     f"{check['detail']}")
    return '\n'.join(lines)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='inspect_checkpoint', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', nargs='?',
                        help='classifier_ckpt/ folder or one checkpoint_<N>; omit to inspect '
                             'a fresh model built from --image-keys')
    parser.add_argument('--image-keys', nargs='+', help='camera keys in classifier_keys order')
    parser.add_argument('--backbone', choices=BACKBONES, help='fresh model: default shared; '
                        'checkpoint: require this layout')
    parser.add_argument('--fine-tune', action='store_true', help='fresh model: trainable backbone')
    parser.add_argument('--n-way', type=int, default=2, help='fresh model: 2 = binary')
    parser.add_argument('--resnet10', help='fresh model: load ImageNet weights from this pkl')
    parser.add_argument('--no-checks', action='store_true', help='skip the sharing checks')
    parser.add_argument('--json', action='store_true', help='print JSON for scripts')
    safe_pickle.add_trust_argument(parser, '--resnet10 file')
    args = parser.parse_args(argv)
    if args.checkpoint is None and not args.image_keys:
        parser.error('give a checkpoint or --image-keys for a fresh model')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        if args.checkpoint:
            loaded = load_checkpoint(args.checkpoint, image_keys=args.image_keys,
                                     backbone=args.backbone)
            spec, params, notes = loaded.spec, loaded.params, loaded.notes
            source = f'{loaded.path} ({loaded.format}, step {loaded.step})'
        else:
            spec = ClassifierSpec(tuple(args.image_keys), n_way=args.n_way,
                                  backbone=args.backbone or 'shared', frozen=not args.fine_tune)
            params, notes, source = init_params(spec), [], 'fresh model (random init)'
            if args.resnet10:
                params = apply_resnet10_weights(params, spec, load_resnet10_weights(
                    args.resnet10, args.trust_pickles),
                                                log=notes.append)
    except (CheckpointError, PretrainedWeightsError, ValueError) as exc:
        print(f'inspect_checkpoint: {exc}', file=sys.stderr)
        return 2
    result = report(spec, params, source, checks=not args.no_checks, notes=notes)
    print(json.dumps(result, indent=2) if args.json else format_text(result))
    return 0 if all(c['passed'] for c in result.get('checks', [])) else 1


if __name__ == '__main__':
    sys.exit(main())
