"""Diagnostics come whatever clock the node is on, and their problems reach the log once, not
once per diagnostics period: a new one at once, a changing one (a silence that grows) at most
every interval, per rig."""
import time

import rclpy.logging
from diagnostic_msgs.msg import DiagnosticStatus

from hil_serl_reward.ros.diagnostics import ProblemLog
from test_classifier_node import KEYS, frames, send_set

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lines(capfd, text):
    return [line for line in capfd.readouterr().err.splitlines() if text in line]


def test_a_problem_is_logged_once_and_again_after_it_cleared(capfd):
    clock = Clock()
    log = ProblemLog(rclpy.logging.get_logger('problem_log_once'), interval_s=5.0, clock=clock)
    for _ in range(20):
        log.update(WARN, 'cameras silent: front (no images yet)')
        clock.now += 1.0
    assert len(lines(capfd, 'cameras silent: front')) == 1
    log.update(OK, 'ok')
    log.update(WARN, 'cameras silent: front (no images yet)')
    assert len(lines(capfd, 'cameras silent: front')) == 1


def test_a_changing_message_is_logged_at_most_every_interval(capfd):
    clock = Clock()
    log = ProblemLog(rclpy.logging.get_logger('problem_log_interval'), interval_s=5.0,
                     clock=clock)
    for second in range(12):                     # 'silent 0 s' ... 'silent 11 s'
        log.update(WARN, f'cameras silent: front (silent {second} s)')
        clock.now += 1.0
    logged = lines(capfd, 'cameras silent: front')
    assert [line.split('(')[-1] for line in logged] == ['silent 0 s)', 'silent 5 s)',
                                                        'silent 10 s)']


def test_errors_and_warnings_are_logged_at_their_level_at_once_for_each_rig(capfd):
    """A warning turning into an error (a camera silent, then a driver of the wrong message
    type), and two rigs with the node's one logger: each line logged at once, none refused."""
    logger = rclpy.logging.get_logger('problem_log_rigs')
    left, right = ProblemLog(logger), ProblemLog(logger)
    left.update(WARN, 'left: cameras silent')
    right.update(ERROR, 'right: wrong message type')
    left.update(ERROR, 'left: wrong message type')
    right.update(WARN, 'right: cameras silent')
    err = capfd.readouterr().err.splitlines()
    for level, message in [('WARN', 'left: cameras silent'), ('ERROR', 'right: wrong message'),
                           ('ERROR', 'left: wrong message'), ('WARN', 'right: cameras silent')]:
        assert f'[{level}]' in next(line for line in err if message in line), (message, err)


def test_on_sim_time_before_any_clock_diagnostics_still_come(bench, checkpoint_for):
    """`use_sim_time: true` (a `/**:` params file from the simulator, a bag not yet playing)
    and nobody publishes /clock: ROS time stands still at 0, and a timer on it never fires.
    The node still says its cameras are silent, then serves cameras stamped by wall time,
    its latencies left out (an age against a clock at 0 would be decades negative)."""
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            use_sim_time=True, camera_timeout=0.3, diagnostics_period=0.2)
    assert node.get_clock().now().nanoseconds == 0 and bench.probe.count_publishers('/clock') == 0
    bench.wait(lambda: bench.latest_diagnostics()['level'] == DiagnosticStatus.WARN, 10.0,
               'diagnostics')
    assert bench.latest_diagnostics()['message'].startswith('cameras silent: wrist_1')
    bench.connect(list(KEYS))
    send_set(bench, frames(0), time.time_ns())
    bench.wait_outputs(1)
    diag = bench.latest_diagnostics()
    assert diag['inference latency p50 (ms)'] != '-', diag     # measured without the clock
    for name in ('wrist_1 arrival', 'transport', 'stamp to publish'):
        assert diag[f'{name} latency p50 (ms)'] == '-', diag
