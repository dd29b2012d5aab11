"""The model benchmark runs and its JAX variants compute the same classifier.

Timings are never asserted (they belong to `make bench`); what can break silently is the
script itself, and the node's XLA setting changing the logits.
"""
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / 'bench'


def test_model_bench_variants_agree_and_report():
    done = subprocess.run(
        [sys.executable, str(BENCH / 'model_bench.py'), '--seconds', '0.2'],
        capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(done.stdout)
    node, direct, defaults = (report['node'], report['node_direct_convolutions'],
                              report['xla_defaults'])
    assert node['xla_flags'].endswith('--xla_cpu_experimental_ynn_fusion_type=')
    assert node['fast_convolutions'] and not direct['fast_convolutions']
    assert 'ynn_fusion_type' not in defaults['xla_flags']
    assert defaults['max_abs_logit_diff_vs_node'] < 1e-4
    assert direct['max_abs_logit_diff_vs_node'] < 1e-4
    assert 0.9e9 < report['xla_flops_per_pair'] < 1.2e9
    assert report['xla_flops_per_pair_fast_form'] < 0.8 * report['xla_flops_per_pair']
    assert report['floor_ms'] > 0
    for result in (node, direct, defaults):
        assert result['batch1']['calls'] >= 50
        assert 0 < result['batch1']['min_ms'] <= result['batch1']['median_ms']
        assert result['batch8_pairs_per_s'] > 0 and result['batch32_pairs_per_s'] > 0
    jax_contenders = {'node', 'node_direct_convolutions', 'xla_defaults'}
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
