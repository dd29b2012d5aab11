"""A short seeded fuzz run in the suite (`make fuzz` runs the long one): every mutated
checkpoint, sidecar, pickle, image, recording and params file loads or is refused in one
line naming it; no crash, hang, unbounded allocation or traceback."""
import json
import subprocess
import sys
from pathlib import Path

FUZZER = Path(__file__).with_name('fuzz_inputs.py')


def test_a_short_fuzz_run_finds_nothing():
    result = subprocess.run([sys.executable, str(FUZZER), '--seed', '1', '--cases', '12'],
                            capture_output=True, text=True, timeout=600)
    report = json.loads(result.stdout[result.stdout.index('{'):])
    bad = {kind: {k: v for k, v in counts.items() if k in ('unexpected', 'unnamed', 'memory',
                                                           'crash', 'hang') and v}
           for kind, counts in report['kinds'].items()}
    assert result.returncode == 0, (bad, [c['examples'] for c in report['kinds'].values()])
    assert all(counts['loaded'] + counts['refused'] == 12
               for counts in report['kinds'].values()), report
    assert sum(counts['refused'] for counts in report['kinds'].values()) > 0   # it mutates
