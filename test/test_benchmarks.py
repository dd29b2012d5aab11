"""The benchmarks run and report what they promise; the model bench's JAX variants compute
the same classifier.

Timings are never asserted (they belong to `make bench`); what can break silently is the
scripts themselves, and the node's XLA setting changing the logits. They take minutes: CI
runs them in its first `make test` and sets HIL_SERL_BENCH_TESTS_RAN=1 for the later runs of
the same suite (Kilted, colcon, upstream), which skip them.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hil_serl_reward.model.xla_flags import (
    CPU_YNN_FUSIONS, GPU_COMMAND_BUFFERS, YNN_FUSION_SINCE, installed_jaxlib, release_of)
from hil_serl_reward.ros.cpu_latency import CPU_LATENCY_DEVICE

BENCH = Path(__file__).resolve().parents[1] / 'bench'
pytestmark = pytest.mark.skipif(os.environ.get('HIL_SERL_BENCH_TESTS_RAN') == '1',
                                reason='the benchmark scripts ran earlier in this CI run')


def test_model_bench_variants_agree_and_report():
    done = subprocess.run(
        [sys.executable, str(BENCH / 'model_bench.py'), '--seconds', '0.2'],
        capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(done.stdout)
    node, direct, defaults = (report['node'], report['node_direct_convolutions'],
                              report['xla_defaults'])
    # the node's flag where the installed jaxlib knows it (xla_flags.py), none where not
    assert node['xla_flags'].endswith(CPU_YNN_FUSIONS) == \
        (release_of(installed_jaxlib()) >= YNN_FUSION_SINCE)
    assert (node['form'], direct['form']) == ('fast', 'direct')
    assert node['malloc'].startswith('image buffers kept')      # the node's (malloc_tuning)
    assert node['largest_call'] in (2, 4)   # two cameras' scratch under 32 MB (test_inference)
    if release_of(installed_jaxlib()) >= (0, 10):    # the node's pin_xla_threads (xla_threads)
        assert 'thread(s) pinned to CPU(s)' in node['xla_threads'], node['xla_threads']
    assert 'ynn_fusion_type' not in defaults['xla_flags']
    assert defaults['max_abs_logit_diff_vs_node'] < 1e-4
    hil_serl = report['node_hil_serl_form']
    assert 'ynn_fusion_type' not in hil_serl['xla_flags']
    assert hil_serl['max_abs_logit_diff_vs_node'] < 1e-4 and hil_serl['batch1']['calls'] >= 50
    for form in (node, direct):              # against hil-serl's own logits, set by set
        assert 0 < form['max_abs_logit_diff_vs_hil_serl'] < 1e-4 or \
            form['max_abs_logit_diff_vs_hil_serl'] == 0.0
        assert form['numerics_sets'] == 200
    assert direct['max_abs_logit_diff_vs_node'] < 1e-4
    assert 0.9e9 < report['xla_flops_per_pair'] < 1.2e9
    assert report['xla_flops_per_pair_fast_form'] < 0.8 * report['xla_flops_per_pair']
    assert report['floor_ms'] > 0
    # without and with keep_cpus_awake's tickers, and cpu_latency_limit_us 0 where permitted
    latency_held = os.access(CPU_LATENCY_DEVICE, os.W_OK)
    assert ('cpu_latency_0' in node) != latency_held, node.get('cpu_latency_0')
    modes = ('', '_cpus_awake') + (('_cpu_latency_0',) if latency_held else ())
    # 5 rounds of 20 back-to-back calls before each rate's and mode's paced calls
    assert node['batch1_back_to_back_in_paced_rounds']['calls'] == 5 * 3 * len(modes) * 20
    for suffix in modes:
        ratios = node[f'paced_median_over_back_to_back{suffix}']
        by_round = node[f'paced_over_back_to_back_by_round{suffix}']
        assert set(ratios) == set(by_round) == {'30hz', '15hz', '10hz'}
        for rate in ('30', '15', '10'):
            paced = node[f'batch1_paced_{rate}hz{suffix}']
            assert paced['calls'] >= 50 and 0 < paced['min_ms'] <= paced['median_ms']
            rounds = by_round[f'{rate}hz']      # each round's own ratio; their median reported
            assert len(rounds) == 5 and min(rounds) > 0
            assert abs(sorted(rounds)[2] - ratios[f'{rate}hz']) <= 0.01, (rounds, ratios)
    between = report['between_frames']                 # the clock and the caches, no model
    assert set(between) == {'clock_loop', 'read_512kb', 'read_4096kb'}
    for times in between.values():
        assert set(times) == {'back_to_back_us', 'after_sleeping_a_period_us',
                              'after_a_busy_period_us'} and min(times.values()) > 0
    stages = report['stages']        # two stages on one backbone: one call, in turn, one alone
    assert stages['backbone_passes'] == 1
    for name in ('one_classifier', 'two_classifiers_in_turn', 'two_stages_one_call'):
        assert stages[name]['calls'] >= 50 and stages[name]['median_ms'] > 0
    assert stages['two_stages_over_one_classifier'] == round(
        stages['two_stages_one_call']['median_ms'] / stages['one_classifier']['median_ms'], 2)
    for result in (node, direct, defaults):
        assert result['batch1']['calls'] >= 50
        assert 0 < result['batch1']['min_ms'] <= result['batch1']['median_ms']
        assert result['batch8_pairs_per_s'] > 0 and result['batch32_pairs_per_s'] > 0
    for result in (node, direct):       # batch 8 in rounds (with torch's where it runs)
        by_round = result['batch8_pairs_per_s_by_round']
        assert len(by_round) == 5 and min(by_round) > 0
        assert result['batch8_pairs_per_s'] == sorted(by_round)[2]
    jax_contenders = {'node', 'node_direct_convolutions', 'xla_defaults', 'node_hil_serl_form'}
    if 'error' in report['torch']:      # torch is a bench-only extra (requirements/bench.txt)
        assert 'not installed' in report['torch']['error']
        assert set(report['batch1_median_over_floor']) == jax_contenders
        return
    # torch ran in its worker process, in rounds alternating with the node's
    assert set(report['batch1_median_over_floor']) == jax_contenders | {'torch_eager',
                                                                        'torch_compile'}
    assert node['batch1_with_torch_rounds']['calls'] >= 50
    for name in ('torch_eager', 'torch_compile'):
        assert report[name]['batch1']['calls'] >= 50
        assert report[name]['max_abs_logit_diff_vs_node'] < 1e-4
        assert len(report[name]['batch8_pairs_per_s_by_round']) == 5
    ratios = np.divide(node['batch8_pairs_per_s_by_round'],
                       report['torch_compile']['batch8_pairs_per_s_by_round'])
    assert report['batch8_node_over_torch_compile'] == round(float(np.median(ratios)), 2)


def test_end_to_end_bench_reports_stages_and_the_transport_floor():
    done = subprocess.run(
        [sys.executable, str(BENCH / 'e2e_bench.py'), '--seconds', '2', '--configs',
         '320x240@15', '--profile', 'on', '--debug-image'],
        capture_output=True, text=True, timeout=400, check=True)
    result, without, with_subscriber = json.loads(done.stdout)['results']
    assert (without['debug_image_subscriber'], with_subscriber['debug_image_subscriber']) == (
        False, True)
    assert without['debug_images_received'] == 0 < with_subscriber['debug_images_received']
    assert 'error' not in result, result
    assert result['sets_published'] > 0 and result['rewards_received'] > 0
    # the counters' deltas span two diagnostics messages about the 2 s window (once a second)
    assert 1.0 <= result['counters_seconds'] <= result['seconds'] + 2.5, result
    assert result['node_malloc'].startswith('image buffers kept')
    assert (result['cpu_latency_limit_us'], result['node_cpu_latency']) == (-1, 'no request')
    stages = result['stage_median_ms']
    assert {'transport', 'inference', 'crop/resize'} <= set(stages)
    assert all(math.isfinite(v) and v >= 0 for v in stages.values()), stages
    latency = result['stamp_to_publish_ms']
    assert stages['inference'] < latency['p50'] <= latency['p95'] <= latency['p99']
    budget = result['latency_budget_ms']
    assert list(budget) == ['wrist_1 arrival', 'front arrival', 'sync wait', 'transport',
                            'mailbox wait', 'convert', 'crop/resize', 'inference', 'publishing',
                            'stamp to publish']
    assert all(0 <= v['p50'] <= v['p95'] for v in budget.values()), budget
    assert budget['stamp to publish']['p50'] == latency['p50']
    assert budget['sync wait']['p50'] <= budget['transport']['p50']
    floor = result['transport_only']
    assert floor['frames_received'] > 0
    arrival = floor['stamp_to_arrival_ms']
    assert 0 < arrival['p50'] <= arrival['p95'] <= arrival['p99']


def test_the_flood_scenario_overloads_the_node_and_reports_each_window():
    done = subprocess.run(
        [sys.executable, str(BENCH / 'e2e_bench.py'), '--configs', '--flood',
         '--flood-seconds', '10'], capture_output=True, text=True, timeout=300, check=True)
    [flood] = json.loads(done.stdout)['results']
    assert flood['scenario'] == 'flood' and 'error' not in flood, flood
    assert flood['sets_synchronised'] > flood['sets_published'] > 0       # more than it takes
    assert flood['sets_dropped_by_mailbox'] > 0
    assert len(flood['windows']) == 2
    assert all(0 < w['p50_ms'] <= w['p95_ms'] for w in flood['windows'])
    assert flood['last_over_first_window_p95'] > 0


def test_call_variants_compute_the_same_logits_and_report():
    """Every variant runs (on the CPU: pinned host memory exists there too), each flags value
    gets a process of its own, and the variants give the node's logits."""
    done = subprocess.run(
        [sys.executable, str(BENCH / 'call_variants.py'), '--device', 'cpu', '--calls', '5',
         '--paced-calls', '2', '--rounds', '1', '--flags=',
         '--flags=--xla_gpu_graph_min_graph_size=1'],
        capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(done.stdout)
    assert set(report['flags']) == {'', '--xla_gpu_graph_min_graph_size=1'}
    for flags, result in report['flags'].items():
        assert result['xla_flags'] == flags
        assert result['kernels']['fusions'] > 0
        variants = result['variants']
        assert set(variants) == {'node', 'node_polled', 'dict_in_two_out', 'shared_weights',
                                 'closed_over', 'pinned_in_out', 'resident', 'resident_in',
                                 'input_only'}
        for variant in variants.values():
            assert 0 < variant['min_ms'] <= variant['median_ms'] <= variant['p95_ms']
            assert variant['paced_30hz_median_ms'] > 0
        for name in ('node', 'node_polled', 'closed_over', 'pinned_in_out'):
            assert variants[name]['max_abs_logit_diff_vs_shared_weights'] < 1e-5


def test_call_variants_run_a_client_setting_in_a_process_of_its_own():
    """--env: a fresh process with the node's XLA flags and that variable (the CPU client
    ignores this one), sharing the card as the node does; --variants keeps only those named."""
    done = subprocess.run(
        [sys.executable, str(BENCH / 'call_variants.py'), '--device', 'cpu', '--calls', '3',
         '--paced-calls', '1', '--rounds', '1', '--variants', 'node', 'node_polled',
         '--env', 'XLA_PYTHON_CLIENT_ALLOCATOR=platform'],
        capture_output=True, text=True, timeout=300, check=True)
    report = json.loads(done.stdout)
    assert report['flags'] == {}
    [(setting, result)] = report['env'].items()
    assert setting == 'XLA_PYTHON_CLIENT_ALLOCATOR=platform'
    assert result['client_env'] == {'XLA_PYTHON_CLIENT_ALLOCATOR': 'platform',
                                    'XLA_PYTHON_CLIENT_PREALLOCATE': 'false'}
    assert result['xla_flags'].split() == list(GPU_COMMAND_BUFFERS)
    assert set(result['variants']) == {'node', 'node_polled'}
    assert result['variants']['node_polled']['max_abs_logit_diff_vs_shared_weights'] < 1e-5


def test_call_variants_names_what_xla_refused():
    done = subprocess.run(
        [sys.executable, str(BENCH / 'call_variants.py'), '--device', 'cpu', '--calls', '1',
         '--paced-calls', '1', '--rounds', '1',
         '--flags=--xla_gpu_enable_command_buffer=+NO_SUCH_COMMAND'],
        capture_output=True, text=True, timeout=300, check=True)
    [result] = json.loads(done.stdout)['flags'].values()
    assert 'NO_SUCH_COMMAND' in result['error']
    assert result['error'].startswith('exit ')


def test_wrapper_bench_reports_both_ways_and_the_in_process_call():
    done = subprocess.run(
        [sys.executable, str(BENCH / 'wrapper_bench.py'), '--seconds', '1', '--rates', '30'],
        capture_output=True, text=True, timeout=400, check=True)
    report = json.loads(done.stdout)['step_return_to_reward']
    assert set(report) == {'in_process', 'topics', 'published'}
    for way in report.values():
        result = way['30_hz']
        assert result['steps'] >= 25 and 0 < result['median_ms'] <= result['p95_ms']
        assert result.get('timeouts', 0) == 0


def json_documents(text: str) -> list:
    """`make bench`'s stdout: one JSON document per benchmark, one after another."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
    return documents


def test_recorded_results_are_what_make_bench_prints():
    """The README's tables cite these files: each must read back as benchmark JSON in make
    bench's order (`e2e-*`: make bench-e2e's one document), nothing else (make's own echo
    once crept into one). A GPU session may record fewer than the three (its device time is
    short)."""
    order = ['model', 'synchroniser', 'end_to_end', 'gym_wrapper']
    results = sorted((BENCH / 'results').glob('*.json'))
    assert results
    for path in results:
        names = [d['benchmark'] for d in json_documents(path.read_text())]
        if path.name.startswith('e2e-'):
            assert names == ['end_to_end'], path
            continue
        if path.name.startswith('variants-'):       # bench/call_variants.py, GPU sessions
            assert names and set(names) == {'call_variants'}, path
            continue
        assert names and names[0] == 'model', path
        assert names == [name for name in order if name in names], path


def test_the_reload_scenario_reports_the_gaps_around_each_change():
    done = subprocess.run(
        [sys.executable, str(BENCH / 'e2e_bench.py'), '--configs', '--reload', '1'],
        capture_output=True, text=True, timeout=300, check=True)
    [reload] = json.loads(done.stdout)['results']
    assert reload['scenario'] == 'reload' and 'error' not in reload, reload
    [change] = reload['reloads']
    assert change['accepted'] and 0 < change['serving_new_checkpoint_within_s'] < 30
    assert 0 < change['longest_gap_ms'] < 30_000 and math.isfinite(reload['quiet_longest_gap_ms'])
    assert change['longest_gap_periods'] == pytest.approx(
        change['longest_gap_ms'] / reload['frame_period_ms'], abs=0.01)


def test_the_rigs_scenario_reports_each_rig_and_the_batches():
    done = subprocess.run(
        [sys.executable, str(BENCH / 'e2e_bench.py'), '--configs', '--rigs', '2',
         '--seconds', '3'], capture_output=True, text=True, timeout=300, check=True)
    [rigs] = json.loads(done.stdout)['results']
    assert rigs['scenario'] == 'rigs' and 'error' not in rigs, rigs
    assert set(rigs['results_per_s_per_rig']) == {'rig_0', 'rig_1'}
    # counted in the cameras' time: at most the 15 sets a second offered (on arrival, a
    # window took late results of the one before and read high)
    assert all(0 < rate <= 15.5 for rate in rigs['results_per_s_per_rig'].values()), rigs
    assert rigs['results_per_s_total'] == pytest.approx(
        sum(rigs['results_per_s_per_rig'].values()), abs=0.1)
    assert rigs['batches_compiled'] == '1, 2' and 1 <= rigs['sets_per_batch']['p100'] <= 2
    assert set(rigs['stamp_to_publish_ms']) == {'rig_0', 'rig_1'}


def test_the_stages_scenario_serves_both_arrangements():
    done = subprocess.run(
        [sys.executable, str(BENCH / 'e2e_bench.py'), '--configs', '--stages', '2',
         '--stages-camera', '320x240@15', '--seconds', '3'],
        capture_output=True, text=True, timeout=400, check=True)
    [stages] = json.loads(done.stdout)['results']
    assert stages['scenario'] == 'stages' and stages['stages'] == 2
    for arrangement, nodes in (('one_node', 1), ('node_per_stage', 2)):
        served = stages[arrangement]
        assert 'error' not in served and served['nodes'] == nodes, served
        assert set(served['results_per_s']) == {'stage_1', 'stage_2'}
        assert all(rate > 0 for rate in served['results_per_s'].values()), served
        assert set(served['stamp_to_publish_ms']) == {'stage_1', 'stage_2'}
        assert served['nodes_cpu_cores'] > 0 and served['nodes_rss_mib'] > 100
