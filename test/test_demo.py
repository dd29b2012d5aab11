"""The one-command demo runs the whole pipeline in separate processes and reports rewards."""
import os
import re
import subprocess
import sys

from hil_serl_reward.model.xla_flags import YNN_FUSION_SINCE, installed_jaxlib, release_of


def test_demo_exits_zero_and_reports_rewards(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'ROS_WHEELS_BOOTSTRAPPED'}
    result = subprocess.run(
        [sys.executable, '-m', 'hil_serl_reward.tools.demo', '--duration', '3', '--logs',
         str(tmp_path)], capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert 'UNTRAINED, randomly initialised classifier' in out
    rewards = int(re.search(r'rewards received:\s+(\d+)', out).group(1))
    assert rewards > 0
    # the node's counters are read after the cameras stopped: every reward received is
    # counted there (read a second early, they were 316 against 324 received). Not equal: in
    # one CI run the monitor received 47 of 56 (at the start or the end; the cause not found)
    assert int(re.search(r'sets published:\s+(\d+)', out).group(1)) >= rewards, out
    assert re.search(r'^node status:\s+publishing rewards$', out, re.M), out
    assert 'probability per second' in out
    # the node process runs with its speed settings (xla_flags.py, classifier_node.main)
    assert ("XLA_FLAGS '--xla_cpu_experimental_ynn_fusion_type=reduce'" in out) == \
        (release_of(installed_jaxlib()) >= YNN_FUSION_SINCE)     # where jaxlib knows the flag
    assert 'XLA_PYTHON_CLIENT_PREALLOCATE=false' in out
    assert 'GIL switch interval 0.1 ms' in out
    assert 'malloc image buffers kept' in out
    # on the CPU the node keeps its CPUs awake between frames (keep_cpus_awake, cpu_tickers)
    assert re.search(r'^keep cpus awake:\s+\d+ CPU\(s\) woken every 0\.2 ms, ', out, re.M), out
    assert 'convolutions fast (Winograd, space-to-depth)' in out
    assert re.search(r'^synchroniser:\s+(hil_serl_reward|message_filters)$', out, re.M)
    assert re.search(r'^model:\s+device \S+, convolutions ', out, re.M)
