"""The malloc setting our nodes start with: it stops image-sized copies from page-faulting
on every message (measured in a fresh process each way), and it never overrides a user's."""
import json
import subprocess
import sys

import pytest

from hil_serl_reward.ros import malloc_tuning

# Four copies of one 640x480 rgb8 image per round, as a message takes through rclpy.
FAULTS_PER_ROUND = '''
import json, resource, sys
import numpy as np
from hil_serl_reward.ros.malloc_tuning import keep_image_buffers, malloc_setting
applied = keep_image_buffers({}) if sys.argv[1] == 'on' else False
image = np.random.default_rng(0).integers(0, 256, 640 * 480 * 3, dtype=np.uint8)
def round_trip():
    data = bytes(bytearray(image.tobytes()))
    return int(np.frombuffer(data, np.uint8).copy()[7])
for _ in range(5):
    round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    round_trip()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50
print(json.dumps({'applied': applied, 'setting': malloc_setting(), 'faults': faults}))
'''


def faults_per_round(mode: str) -> dict:
    out = subprocess.run([sys.executable, '-c', FAULTS_PER_ROUND, mode], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_kept_buffers_stop_the_page_faults_of_each_image_copy():
    default, kept = faults_per_round('off'), faults_per_round('on')
    assert default['setting'] == 'glibc default'
    assert default['faults'] > 200      # 225 pages per 921,600-byte copy
    assert kept['applied'] and kept['setting'].startswith('image buffers kept')
    assert kept['faults'] < 10


@pytest.mark.parametrize('environ', [
    {'GLIBC_TUNABLES': 'glibc.malloc.trim_threshold=1048576'},
    {'MALLOC_MMAP_THRESHOLD_': '131072'},
])
def test_users_choice_is_kept(environ, monkeypatch):
    monkeypatch.setattr(malloc_tuning, '_setting', 'glibc default')
    assert not malloc_tuning.keep_image_buffers(environ)
    assert malloc_tuning.malloc_setting() == 'user setting (environment)'


def test_unrelated_tunables_do_not_count_as_a_choice(monkeypatch):
    monkeypatch.setattr(malloc_tuning, '_setting', 'glibc default')
    assert malloc_tuning.keep_image_buffers({'GLIBC_TUNABLES': 'glibc.rtld.nns=2'})
    assert malloc_tuning.malloc_setting().startswith('image buffers kept')
