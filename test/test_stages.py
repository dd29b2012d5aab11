"""Stages in one call (model/stages.py): each stage's answer as its own classifier gives it,
the shared backbone run once, mismatched stages refused with what was found."""
import jax
import numpy as np
import pytest

from conftest import params_for
from hil_serl_reward.model.checkpoint import CheckpointError
from hil_serl_reward.model.inference import RewardClassifier
from hil_serl_reward.model.reward_classifier import ClassifierSpec
from hil_serl_reward.model.stages import StageClassifiers, split_backbones, with_backbones

SPEC = ClassifierSpec(('wrist_1', 'front'))


def stage_params(seed, backbone_from=None, spec=SPEC):
    """Random params of `seed`, holding the backbone of seed `backbone_from` (hil-serl's
    stages: one frozen ImageNet ResNet-10, their own encoders and heads)."""
    params = jax.tree_util.tree_map(np.asarray, dict(params_for(spec, seed)))
    if backbone_from is None:
        return params
    rest, _ = split_backbones(params, spec)
    return with_backbones(rest, split_backbones(params_for(spec, backbone_from), spec)[1],
                          spec)


def classifiers(form, **seeds):
    return {name: RewardClassifier(SPEC, stage_params(*seed), device='cpu', form=form,
                                   warm_up=False) for name, seed in seeds.items()}


def convolutions_of(stages, images):
    observations = {key: image[:1, None] for key, image in images.items() if key in SPEC.image_keys}
    stacked = np.stack([observations[key] for key in SPEC.image_keys])
    text = stages._forward.lower(stages._backbones, stages._rests, stacked).compile().as_text()
    return text.count(' convolution(')


@pytest.mark.parametrize('form', ['direct', 'fast'])
def test_each_stage_answers_as_its_own_classifier(form, images):
    alone = classifiers(form, grasp=(1,), place=(2, 1))
    stages = StageClassifiers(classifiers(form, grasp=(1,), place=(2, 1)))
    assert stages.backbone_passes == 1
    batch = {key: images[key] for key in SPEC.image_keys}
    answers = stages.predict(batch)
    assert list(answers) == ['grasp', 'place']
    for name, classifier in alone.items():
        expected = classifier.predict(batch)
        np.testing.assert_allclose(answers[name].logits, expected.logits, atol=1e-5)
        np.testing.assert_allclose(answers[name].probabilities, expected.probabilities,
                                   atol=1e-6)
    assert not np.allclose(answers['grasp'].logits, answers['place'].logits)


def test_one_backbone_pass_for_stages_that_share_it_one_each_otherwise(images):
    """Counted in the compiled call: XLA merges identical backbones (direct form: 12
    convolutions in one backbone pass); distinct backbones each keep theirs."""
    one = StageClassifiers(classifiers('direct', grasp=(1,)))
    shared = StageClassifiers(classifiers('direct', grasp=(1,), place=(2, 1), lift=(3, 1)))
    distinct = StageClassifiers(classifiers('direct', grasp=(1,), place=(2,)))
    assert (shared.backbone_passes, distinct.backbone_passes) == (1, 2)
    assert shared.backbone_groups() == [['grasp', 'place', 'lift']]
    assert distinct.backbone_groups() == [['grasp'], ['place']]
    per_pass = convolutions_of(one, images)
    assert per_pass > 0
    assert convolutions_of(shared, images) == per_pass
    assert convolutions_of(distinct, images) == 2 * per_pass


def test_the_hil_serl_form_runs_each_stage_as_hil_serl_does(images):
    stages = StageClassifiers(classifiers('hil-serl', grasp=(1,), place=(2, 1)))
    one_set = {key: images[key][:1] for key in SPEC.image_keys}
    for name, classifier in classifiers('hil-serl', grasp=(1,), place=(2, 1)).items():
        np.testing.assert_array_equal(stages.predict(one_set)[name].logits,
                                      classifier.predict(one_set).logits)


def test_stages_of_other_cameras_or_n_way_are_refused_saying_what_they_hold():
    grasp = RewardClassifier(SPEC, stage_params(1), device='cpu', warm_up=False)
    side = ClassifierSpec(('wrist_1', 'side'))
    other = RewardClassifier(side, stage_params(1, spec=side), device='cpu', warm_up=False)
    with pytest.raises(CheckpointError, match=r"stage 'place' holds cameras \['wrist_1', "
                                              r"'side'\].*the same cameras"):
        StageClassifiers({'grasp': grasp, 'place': other})
    three = ClassifierSpec(SPEC.image_keys, n_way=3)
    flip = RewardClassifier(three, stage_params(1, spec=three), device='cpu', warm_up=False)
    with pytest.raises(CheckpointError, match="stage 'flip' is 3-way: stages are binary"):
        StageClassifiers({'grasp': grasp, 'flip': flip})


def test_a_stage_with_non_finite_outputs_is_named():
    bad = stage_params(2, 1)
    bad['Dense_1'] = {**bad['Dense_1'], 'bias': np.full_like(bad['Dense_1']['bias'], np.nan)}
    stages = {'grasp': RewardClassifier(SPEC, stage_params(1), device='cpu', warm_up=False),
              'place': RewardClassifier(SPEC, bad, device='cpu', warm_up=False)}
    with pytest.raises(CheckpointError, match="stage 'place': the output on a black probe"):
        StageClassifiers(stages)
