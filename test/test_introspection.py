"""The sharing checks and the inspector CLI report what the model really does."""
import json

import numpy as np

from conftest import params_for
from hil_serl_reward.model.checkpoint import save_checkpoint
from hil_serl_reward.model.introspection import (
    bce_gradients, check_gradients, check_perturbation, check_removal, check_structure,
    random_images, split_backbone)
from hil_serl_reward.model.reward_classifier import ClassifierSpec
from hil_serl_reward.tools import inspect_checkpoint


def test_shared_checks_pass(two_camera_spec, two_camera_params):
    images = random_images(two_camera_spec)
    for result in (check_structure(two_camera_spec, two_camera_params),
                   check_perturbation(two_camera_spec, two_camera_params, images),
                   check_removal(two_camera_spec, two_camera_params, images)):
        assert result.passed, result.detail
    assert "changed ['front', 'wrist_1']" in check_perturbation(
        two_camera_spec, two_camera_params, images).detail


def test_independent_perturbation_touches_one_camera():
    spec = ClassifierSpec(('wrist_1', 'front'), backbone='independent')
    result = check_perturbation(spec, params_for(spec), random_images(spec))
    assert result.passed and "changed ['front']" in result.detail


def test_structure_check_fails_on_a_wrong_tree(two_camera_spec, two_camera_params):
    independent = ClassifierSpec(('wrist_1', 'front'), backbone='independent')
    assert not check_structure(independent, two_camera_params).passed


def test_frozen_gradient_is_zero_and_fine_tune_is_not(two_camera_spec, two_camera_params):
    images = random_images(two_camera_spec)
    frozen = split_backbone(bce_gradients(two_camera_spec, two_camera_params, images))
    assert all(not np.any(g) for g in frozen['backbone'])
    assert all(np.any(g) for g in frozen['trainable'])
    tuned_spec = ClassifierSpec(two_camera_spec.image_keys, frozen=False)
    tuned = split_backbone(bce_gradients(tuned_spec, two_camera_params, images))
    assert any(np.any(g) for g in tuned['backbone'])
    assert check_gradients(tuned_spec, two_camera_params, images).passed


def test_cli_json_for_a_checkpoint(tmp_path, capsys, two_camera_spec, two_camera_params):
    save_checkpoint(tmp_path, two_camera_params, two_camera_spec, step=5)
    assert inspect_checkpoint.main([str(tmp_path), '--json']) == 0
    result = json.loads(capsys.readouterr().out)
    assert result['backbone_owners'] == ['encoder_front/pretrained_encoder']
    assert result['param_count'] == result['expected_param_count'] == 7_267_649
    assert result['image_keys'] == ['wrist_1', 'front']
    assert [c['name'] for c in result['checks']] == [
        'structure', 'perturb backbone', 'remove backbone', 'gradients']
    assert all(c['passed'] for c in result['checks'])
    assert result['encoders']['encoder_wrist_1'].keys() == {
        'Dense_0', 'LayerNorm_0', 'SpatialLearnedEmbeddings_0'}


def test_cli_reports_a_bad_checkpoint(tmp_path, capsys):
    assert inspect_checkpoint.main([str(tmp_path / 'missing')]) == 2
    assert 'no checkpoint at' in capsys.readouterr().err
