"""The classifiers of a multi-stage task on one camera set, their shared backbone run once.

hil-serl's multi-stage tasks (MultiStageBinaryRewardClassifierWrapper) ask one binary
classifier per stage about the same observation. Trained as hil-serl trains them, every
stage's classifier holds the same frozen ImageNet ResNet-10, which is nearly all of the
arithmetic (580 of the 585 MFLOP per image, perf-anchors.md). So one jitted call takes each
distinct backbone's params once and every stage's other params, and runs each stage's model
on the same images: XLA's common-subexpression elimination merges the stages' identical
backbone computations (the same ops on the same arguments) into one, and the call costs
one backbone plus a head per stage (test_stages counts the convolutions of the compiled
call). Stages whose backbones differ (trained with `frozen=False`, or from other weights)
still share the call, each distinct backbone run once.
The `hil-serl` form runs each stage's own forward in turn: it promises hil-serl's bits,
which another program would not give.
"""
import functools
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

import jax
import numpy as np

from hil_serl_reward.model.checkpoint import CheckpointError
from hil_serl_reward.model.inference import (
    Prediction, RewardClassifier, as_model_input, probe_observations, refuse_non_finite,
    split_outputs, stack_cameras, stacked_outputs)
from hil_serl_reward.model.reward_classifier import ClassifierSpec, Params, build_classifier

BACKBONE = 'pretrained_encoder'


def split_backbones(params: Params, spec: ClassifierSpec) -> Tuple[Params, Tuple[Params, ...]]:
    """`params` without the backbone(s), and the backbone params of each owner
    (spec.backbone_owners) in order."""
    encoders = dict(params['encoder_def'])
    backbones = []
    for owner in spec.backbone_owners:
        encoder = dict(encoders[f'encoder_{owner}'])
        backbones.append(encoder.pop(BACKBONE))
        encoders[f'encoder_{owner}'] = encoder
    return {**params, 'encoder_def': encoders}, tuple(backbones)


def with_backbones(rest: Params, backbones: Sequence[Params], spec: ClassifierSpec) -> Params:
    """split_backbones undone."""
    encoders = dict(rest['encoder_def'])
    for owner, backbone in zip(spec.backbone_owners, backbones):
        encoders[f'encoder_{owner}'] = {**encoders[f'encoder_{owner}'], BACKBONE: backbone}
    return {**rest, 'encoder_def': encoders}


def same_weights(a: Params, b: Params) -> bool:
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    return tree_a == tree_b and all(
        x.shape == y.shape and x.dtype == y.dtype and np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(leaves_a, leaves_b))


@functools.lru_cache(maxsize=None)
def staged_forward(spec: ClassifierSpec, form: str, backbone_of_stage: Tuple[int, ...]
                   ) -> Callable:
    """`(backbones, rests, stacked) -> outputs`: stage i's model with backbones
    [backbone_of_stage[i]] and rests[i], every stage's logits and probabilities side by
    side (B, 2 x stages). One per model shape and grouping, so that a reload of a stage
    with new head weights reuses the compiled call."""
    model = build_classifier(spec, form)

    def outputs(backbones: Sequence[Params], rests: Sequence[Params], stacked: jax.Array
                ) -> jax.Array:
        return jax.numpy.concatenate(
            [stacked_outputs(model, spec.image_keys,
                             with_backbones(rest, backbones[index], spec), stacked)
             for index, rest in zip(backbone_of_stage, rests)], axis=1)
    return jax.jit(outputs)


class StageClassifiers:
    """Binary classifiers, one per stage, of the same cameras, on one device and in one model
    form; `predict` answers every stage for a batch of sets."""

    def __init__(self, stages: Mapping[str, RewardClassifier], warm_up: bool = True) -> None:
        """`stages`: name -> classifier, in the order the results are reported; classifiers
        made with warm_up=False (the probe check runs here, on the shared call)."""
        if not stages:
            raise ValueError('stages: at least one is needed')
        self.stages: Dict[str, RewardClassifier] = dict(stages)
        first_name, first = next(iter(self.stages.items()))
        for name, classifier in self.stages.items():
            where = _where(name, classifier)
            if classifier.spec.n_way != 2:
                raise CheckpointError(
                    f'{where} is {classifier.spec.n_way}-way: stages are binary (hil-serl\'s '
                    f'MultiStageBinaryRewardClassifierWrapper: one logit per stage)')
            if classifier.spec != first.spec:
                raise CheckpointError(
                    f'{where} holds cameras {list(classifier.spec.image_keys)} '
                    f'({classifier.spec.backbone} backbone), {_where(first_name, first)} '
                    f'{list(first.spec.image_keys)} ({first.spec.backbone}): the stages of '
                    f'one node classify the same cameras')
            if (classifier.form, classifier.device) != (first.form, first.device):
                raise ValueError(f'stage {name!r}: form {classifier.form} on '
                                 f'{classifier.device}, stage {first_name!r}: {first.form} on '
                                 f'{first.device}; the stages share one call')
        self.spec = first.spec
        self.form = first.form
        self.device = first.device
        distinct: List[Tuple[Params, ...]] = []
        self._rests: List[Params] = []
        backbone_of_stage = []
        for classifier in self.stages.values():
            rest, backbones = split_backbones(classifier.params, self.spec)
            index = next((i for i, known in enumerate(distinct)
                          if same_weights(known, backbones)), len(distinct))
            if index == len(distinct):
                distinct.append(backbones)
            backbone_of_stage.append(index)
            self._rests.append(rest)
        self._backbones = tuple(distinct)
        self.backbone_of_stage = tuple(backbone_of_stage)
        self._forward = None if self.form == 'hil-serl' else \
            staged_forward(self.spec, self.form, self.backbone_of_stage)
        if warm_up:
            self.check_probe_outputs()

    @property
    def backbone_passes(self) -> int:
        """Distinct backbones, each run once per set."""
        return len(self._backbones)

    def backbone_groups(self) -> List[List[str]]:
        """The stages by the backbone they hold, in stage order."""
        names = list(self.stages)
        return [[names[i] for i, index in enumerate(self.backbone_of_stage) if index == group]
                for group in range(self.backbone_passes)]

    def check_probe_outputs(self) -> None:
        """RewardClassifier.check_probe_outputs for every stage, through the shared call
        (which this compiles); names the stage whose outputs are not finite."""
        for probe_name, probe in probe_observations(self.spec).items():
            for name, prediction in self.predict(probe).items():
                refuse_non_finite(prediction, probe_name, _where(name, self.stages[name]))

    def device_memory_mib(self) -> Dict[str, float]:
        return next(iter(self.stages.values())).device_memory_mib()

    def predict(self, images: Mapping[str, np.ndarray]) -> Dict[str, Prediction]:
        """Every stage's prediction for `images` (any shape RewardClassifier.predict takes)."""
        if self._forward is None:
            return {name: classifier.predict(images)
                    for name, classifier in self.stages.items()}
        observations = as_model_input(images, self.spec.image_keys)
        outputs = np.asarray(self._forward(self._backbones, self._rests,
                                           stack_cameras(observations, self.spec.image_keys)))
        return {name: Prediction(*split_outputs(outputs[:, 2 * i:2 * i + 2], self.spec))
                for i, name in enumerate(self.stages)}


def _where(name: str, classifier: RewardClassifier) -> str:
    checkpoint = classifier.checkpoint
    return f'stage {name!r}' + (f" ('{checkpoint.path}')" if checkpoint else '')
