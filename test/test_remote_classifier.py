"""The drop-in for hil-serl's `load_classifier_func` (remote_classifier.py) against real reward
nodes over DDS: hil-serl's own wrappers (as its code behaves: hil_serl_wrappers.py) give, step
for step, what they give with the classifier in process: the binary wrapper, the multi-stage
wrapper over two nodes (object_handover's latches), the egg-flip wrapper on a 3-way node.
Several actors on one node each get only the results of their own observations."""
import json
import os
import re
import subprocess
import sys
import threading
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from rl_side import RL_SIDE_MARKS, Env, gym

pytestmark = RL_SIDE_MARKS
KEYS = ('wrist_1', 'front')
EGG_CLASSES = ['egg_0', 'egg_1', 'egg_lost']            # config/examples/egg_flip.yaml
COLOURS = {'black': (0, 0, 0), 'white': (255, 255, 255), 'cyan': (0, 255, 255),
           'yellow': (255, 255, 0), 'blue': (0, 0, 255)}


def decisive_checkpoint(folder, n_way, seed, keys=KEYS):
    """A checkpoint of hil-serl's shape whose head is scaled up so that plain colours get
    confident, different answers (a random head sits near p = 0.5, where no rule fires)."""
    import jax
    from conftest import params_for
    from hil_serl_reward.model.checkpoint import save_checkpoint
    from hil_serl_reward.model.reward_classifier import ClassifierSpec
    spec = ClassifierSpec(tuple(keys), n_way=n_way)
    params = jax.tree_util.tree_map(np.asarray, dict(params_for(spec, seed)))
    params['Dense_1'] = {**params['Dense_1'], 'kernel': params['Dense_1']['kernel'] * 30.0}
    save_checkpoint(folder, params, spec, step=1)
    return folder


class ScriptedEnv(Env):
    """hil-serl's env in miniature: 128x128 crops with a time axis and a `state`, showing the
    scripted colour (or `noise<seed>`) at reset (script[0]) and at each step."""

    def __init__(self, script, gripper=0.0, keys=KEYS):
        self.script = script
        self.gripper = gripper
        self.keys = keys
        self.observation_space = gym.spaces.Dict({k: gym.spaces.Box(
            0, 255, (1, 128, 128, 3), np.uint8) for k in keys})
        self.action_space = gym.spaces.Discrete(1)
        self.steps = 0

    def observe(self):
        name = self.script[min(self.steps, len(self.script) - 1)]
        image = (np.random.default_rng(int(name[5:])).integers(0, 256, (128, 128, 3), np.uint8)
                 if name.startswith('noise') else np.full((128, 128, 3), COLOURS[name], np.uint8))
        obs = {k: image[None] for k in self.keys}
        obs['state'] = np.array([[self.gripper, 0.0]], np.float32)
        return obs

    def reset(self, seed=None, options=None):
        self.steps = 0
        return self.observe(), {}

    def step(self, action):
        self.steps += 1
        return self.observe(), 0, False, False, {}


def in_process(checkpoint):
    """hil-serl's `classifier(obs) -> logits`, here in this process."""
    from hil_serl_reward.model.inference import RewardClassifier
    classifier = RewardClassifier.from_checkpoint(checkpoint, device='cpu')
    return lambda obs: np.asarray(classifier.predict({k: obs[k][0] for k in KEYS}).logits[0])


def serve(bench, checkpoint, **params):
    """A reward node for actors that publish their crops: no crop, identical stamps only."""
    bench.start_node(checkpoint_path=str(checkpoint), image_keys=list(KEYS),
                     camera_timeout=60.0, sync_slop=1e-9, **params)


def remote(bench, n_way=2, **kwargs):
    """The drop-in on a client of the bench's probe node: a DDS participant per actor, as
    separate actor processes have, is what docs/rl.md's snippet test does; dozens of them in
    one long test process made discovery take over 30 s here."""
    from hil_serl_reward.client import ClassificationClient
    from hil_serl_reward.remote_classifier import load_classifier_func
    return load_classifier_func(None, None, KEYS, '/unused/classifier_ckpt', n_way,
                                namespace=bench.namespace, timeout=10.0,
                                client=ClassificationClient(node=bench.probe), **kwargs)


def trajectory(wrapper, steps):
    """(reward, done, succeed, state) of reset and each step until done."""
    obs, info = wrapper.reset()
    seen = [(None, False, info['succeed'], obs['state'].tolist())]
    for _ in range(steps):
        obs, reward, done, _, info = wrapper.step(0)
        seen.append((int(reward), bool(done), info['succeed'], obs['state'].tolist()))
        if done:
            break
    return seen


def close(*funcs):
    for func in funcs:
        func.remote.close()
        func.remote.client.close()


def hil_serls_own(checkpoint):
    """hil-serl's `load_classifier_func(...)` itself, in its model code's form
    (test/hil_serl_model.py), with the checkpoint's weights."""
    from hil_serl_model import classifier_func
    from hil_serl_reward.model.checkpoint import load_checkpoint
    return classifier_func(load_checkpoint(checkpoint, image_keys=KEYS).params, KEYS)


def test_hil_serls_binary_wrapper_with_the_drop_in(bench, tmp_path):
    """On a node in hil-serl's form the wrapper gets hil-serl's own classifier's rewards; the
    logits come back through the published float32 probability, so their sigmoid is hil-serl's
    to one float32 step."""
    from hil_serl_wrappers import MultiCameraBinaryRewardClassifierWrapper
    checkpoint = decisive_checkpoint(tmp_path / 'ckpt', 2, seed=2)
    serve(bench, checkpoint, convolutions='hil-serl')
    script = ['black', 'blue', 'white']
    func = remote(bench)
    local = hil_serls_own(checkpoint)
    try:
        import jax

        def rule(classifier):            # ram_insertion's reward_func, gripper check left out
            return lambda obs: int(jax.nn.sigmoid(classifier(obs).item()) > 0.7)
        got = trajectory(MultiCameraBinaryRewardClassifierWrapper(
            ScriptedEnv(script), rule(func)), 5)
        want = trajectory(MultiCameraBinaryRewardClassifierWrapper(
            ScriptedEnv(script), rule(local)), 5)
        assert got == want
        assert [step[0] for step in want[1:]] == [0, 1], want     # the rule fired on white
        for colour in COLOURS:                   # the logits themselves, through the sigmoid
            obs = ScriptedEnv([colour]).observe()
            want = np.float32(jax.nn.sigmoid(local(obs))[0])
            assert abs(np.float32(jax.nn.sigmoid(func(obs))[0]) - want) <= np.spacing(want)
    finally:
        close(func)


def test_object_handovers_two_stages_latch_as_upstream(bench, tmp_path):
    """Two nodes (one checkpoint per stage, each in its own namespace), hil-serl's
    MultiStageBinaryRewardClassifierWrapper: stage 1 fires on cyan, stage 2 on white; a stage
    once latched gives no second reward, and the episode ends when both are."""
    from hil_serl_wrappers import MultiStageBinaryRewardClassifierWrapper
    from ros_harness import Bench
    second = Bench()
    checkpoints = [decisive_checkpoint(tmp_path / f'stage_{i}', 2, seed)
                   for i, seed in ((1, 1), (2, 2))]
    serve(bench, checkpoints[0])
    serve(second, checkpoints[1])
    script = ['black', 'black', 'cyan', 'cyan', 'white', 'black']
    funcs = [remote(bench), remote(second)]
    try:
        got = trajectory(MultiStageBinaryRewardClassifierWrapper(ScriptedEnv(script), funcs), 8)
        want = trajectory(MultiStageBinaryRewardClassifierWrapper(
            ScriptedEnv(script), [in_process(c) for c in checkpoints]), 8)
        assert got == want
        assert [(r, d, s) for r, d, s, _ in want[1:]] == [
            (0, False, False), (1, False, False), (0, False, False), (1, True, True)], want
        again = MultiStageBinaryRewardClassifierWrapper(ScriptedEnv(['cyan', 'cyan']), funcs)
        assert [step[0] for step in trajectory(again, 1)[1:]] == [1]    # reset un-latches
    finally:
        close(*funcs)
        second.close()


def test_object_handovers_two_stages_on_one_node_serving_both(bench, tmp_path):
    """The same task on one node (`stages`), through load_stage_classifier_funcs: the wrapper
    gets what it gets with the classifiers in process, step for step, and the node gets one
    set per step: the second stage asked about an observation takes the first one's set."""
    from hil_serl_wrappers import MultiStageBinaryRewardClassifierWrapper
    from hil_serl_reward.remote_classifier import load_stage_classifier_funcs
    checkpoints = [decisive_checkpoint(tmp_path / f'stage_{i}', 2, seed)
                   for i, seed in ((1, 1), (2, 2))]
    node = bench.start_node(image_keys=list(KEYS), camera_timeout=60.0, sync_slop=1e-9,
                            stages=['stage_1', 'stage_2'],
                            **{f'stage_{i}.checkpoint_path': str(c)
                               for i, c in enumerate(checkpoints, start=1)})
    funcs = load_stage_classifier_funcs(['stage_1', 'stage_2'], KEYS, namespace=bench.namespace,
                                        timeout=10.0, node=bench.probe)     # as remote()
    asked = []

    def counted(func):
        return lambda obs: asked.append(id(obs)) or func(obs)
    script = ['black', 'black', 'cyan', 'cyan', 'white', 'black']
    try:
        got = trajectory(MultiStageBinaryRewardClassifierWrapper(
            ScriptedEnv(script), [counted(f) for f in funcs]), 8)
        want = trajectory(MultiStageBinaryRewardClassifierWrapper(
            ScriptedEnv(script), [in_process(c) for c in checkpoints]), 8)
        assert got == want
        assert [(r, d, s) for r, d, s, _ in want[1:]] == [
            (0, False, False), (1, False, False), (0, False, False), (1, True, True)], want
        assert len(asked) == 6          # both stages asked on the first two steps
        # a set per observation whose pixels were not the last sent (black, cyan, white: the
        # second cyan step asks stage 2 about the set stage 1 had sent), and any sent again
        published = node.rigs[0].counts['sets_published']
        assert 3 <= published < len(asked), published
        assert funcs[0].remote.actor_id == funcs[1].remote.actor_id
    finally:
        close(*funcs)


def test_a_sent_set_answers_only_the_same_pixels_and_only_recently(monkeypatch):
    """SentSet keeps copies: an env writing its next image into the buffer it sent is a new
    observation; after max_age_s the set is not reused (a reload may have come between)."""
    from hil_serl_reward.remote_classifier import SentSet
    buffer = np.zeros((128, 128, 3), np.uint8)
    sent, stamps = SentSet(max_age_s=1.0), [10]
    sent.sent({'wrist_1': buffer}, stamps)
    assert sent.stamps_for({'wrist_1': buffer.copy()}) is stamps
    buffer[0, 0, 0] = 1                                 # the env's next image, same buffer
    assert sent.stamps_for({'wrist_1': buffer}) is None
    assert sent.stamps_for({'front': np.zeros((128, 128, 3), np.uint8)}) is None
    now = time.monotonic()
    monkeypatch.setattr(time, 'monotonic', lambda: now + 1.5)
    assert sent.stamps_for({'wrist_1': np.zeros((128, 128, 3), np.uint8)}) is None


def test_egg_flip_on_a_three_way_node(bench, tmp_path):
    """hil-serl's EggClassifierWrapper with the drop-in (n_way=3): the class at reset is 0
    (yellow); blue stays class 0, black is class 1 below the 0.9 confidence, white is class 1
    with it: reward 1 and done there, as with the classifier in process; the class sequence
    appended to obs['state'] is the same."""
    from hil_serl_wrappers import EggClassifierWrapper
    checkpoint = decisive_checkpoint(tmp_path / 'egg', 3, seed=3)
    serve(bench, checkpoint, class_names=EGG_CLASSES, target_classes=['egg_1'], threshold=0.9)
    script = ['yellow', 'yellow', 'blue', 'black', 'white', 'yellow']
    func = remote(bench, n_way=3)
    try:
        got = trajectory(EggClassifierWrapper(ScriptedEnv(script), func), 8)
        want = trajectory(EggClassifierWrapper(ScriptedEnv(script), in_process(checkpoint)), 8)
        assert got == want
        assert [(r, d) for r, d, _, _ in want[1:]] == [(0, False)] * 3 + [(1, True)], want
        assert [s[0][-1] for _, _, _, s in want] == [0, 0, 0, 1, 1], want     # the classes
        with pytest.raises(ValueError, match='expects a binary result; the node .* answered '
                                             'with 3 classes'):
            binary = remote(bench, n_way=2)
            try:
                binary(ScriptedEnv(['white']).observe())
            finally:
                close(binary)
    finally:
        close(func)


def test_the_packages_wrapper_with_class_flip_rewards_as_hil_serls_egg_wrapper(bench, tmp_path):
    """RemoteRewardClassifierWrapper(reward_func=ClassFlip()) on the 3-way node: the same
    rewards, ends and classes appended to obs['state'] as hil-serl's EggClassifierWrapper
    with the classifier in process; an episode that starts in neither class is reset again
    after `restart`, here with the rule's classes given by name."""
    from hil_serl_reward.client import ClassificationClient
    from hil_serl_reward.gym_wrapper import ClassFlip, RemoteRewardClassifierWrapper
    from hil_serl_wrappers import EggClassifierWrapper
    checkpoint = decisive_checkpoint(tmp_path / 'egg', 3, seed=3)
    serve(bench, checkpoint, class_names=EGG_CLASSES, target_classes=['egg_1'], threshold=0.9)
    script = ['yellow', 'yellow', 'blue', 'black', 'white', 'yellow']
    client = ClassificationClient(node=bench.probe)
    topics = {key: f'{bench.namespace}/{key}/image_raw' for key in KEYS}

    def wrapper(env, rule):
        return RemoteRewardClassifierWrapper(env, rule, client=client, image_topics=topics,
                                             timeout=10.0)
    try:
        flip = wrapper(ScriptedEnv(script), ClassFlip())
        flip.wait_for_node()
        got = trajectory(flip, 8)
        want = trajectory(EggClassifierWrapper(ScriptedEnv(script), in_process(checkpoint)), 8)
        assert got == want
        assert [(r, d) for r, d, _, _ in got[1:]] == [(0, False)] * 3 + [(1, True)], got

        restarts = []
        starts = iter(['white', 'yellow'])            # classes egg_1, then egg_0

        class Restarting(ScriptedEnv):
            def reset(self, seed=None, options=None):
                self.script = [next(starts), 'blue']
                return super().reset(seed=seed, options=options)
        lost = wrapper(Restarting([]), ClassFlip(('egg_0', 'egg_lost'), restart=restarts.append))
        obs, _ = lost.reset()
        assert restarts == ['egg_1'] and obs['state'][0, -1] == 0     # started again, in egg_0
        assert lost.step(0)[1] == 0                                   # blue: egg_0, no flip
    finally:
        client.close()


def run_actors(funcs, local, steps, pause=0.0):
    """An actor per func at once, each classifying `steps` random observations of its own
    (actor i sleeping pause * i between them): every result it gets must be the classifier's
    answer for that actor's observation."""
    outcomes = {name: [] for name in funcs}
    errors = []

    def actor(index, name):
        rng = np.random.default_rng(100 + index)
        try:
            for _ in range(steps):
                obs = {k: rng.integers(0, 256, (1, 128, 128, 3), dtype=np.uint8) for k in KEYS}
                outcomes[name].append((funcs[name](obs)[0], local(obs)[0]))
                time.sleep(pause * index)
        except Exception as exc:        # noqa: BLE001 - reported below with the actor
            errors.append((name, repr(exc)))

    threads = [threading.Thread(target=actor, args=(i, name)) for i, name in enumerate(funcs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-np.float64(x)))   # noqa: E731
    for name, results in outcomes.items():
        assert len(results) == steps, (name, results)
        for got, want in results:
            assert sigmoid(got) == pytest.approx(sigmoid(want), abs=1e-6), (name, results)


@pytest.mark.parametrize('actors', [2, 4])
def test_actors_on_one_node_get_only_their_own_results(bench, checkpoint_for, actors):
    """Actors publishing to one node at once, at different rates, each with its own images:
    every result an actor gets is the classifier's answer for that actor's observation."""
    checkpoint = checkpoint_for(KEYS)
    serve(bench, checkpoint)
    local = in_process(checkpoint)
    funcs = [remote(bench) for _ in range(actors)]
    try:
        run_actors(dict(enumerate(funcs)), local, steps=6, pause=0.03)
        ids = {f.remote.actor_id for f in funcs}
        assert len(ids) == actors
    finally:
        close(*funcs)


def test_an_actor_per_rig_on_a_node_serving_two_rigs(bench, checkpoint_for):
    """Two robots, one node (`rigs: [left, right]`): each robot's actor gives its rig's
    namespace to the drop-in, sends its observations there and gets the classifier's answer
    for exactly them, at the same time as the other robot's actor."""
    from hil_serl_reward.client import ClassificationClient
    from hil_serl_reward.remote_classifier import load_classifier_func
    checkpoint = checkpoint_for(KEYS)
    serve(bench, checkpoint, rigs=['left', 'right'])
    local = in_process(checkpoint)
    funcs = {rig: load_classifier_func(
        None, None, KEYS, '/unused/classifier_ckpt', namespace=f'{bench.namespace}/{rig}',
        timeout=10.0,
        client=ClassificationClient(node=bench.probe, topic=f'{rig}/classification'))
        for rig in ('left', 'right')}
    try:
        run_actors(funcs, local, steps=4)
        published = {rig.name: rig.counts['sets_published'] for rig in bench.node.rigs}
        assert published['left'] >= 4 and published['right'] >= 4, published
    finally:
        close(*funcs.values())


def test_a_node_that_pairs_different_stamps_is_refused_at_the_first_call(bench, checkpoint_for):
    """With the default sync_slop (auto, sized for free-running cameras) one observation's
    wrist image could be classified with another's front image: refused, saying what to set."""
    bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                     camera_timeout=60.0)
    func = remote(bench)
    try:
        with pytest.raises(ValueError, match=r'hil_serl_reward pairs frames up to auto apart '
                                             r'\(sync_slop\).*sync_slop: 1.0e-9'):
            func(ScriptedEnv(['white']).observe())
    finally:
        close(func)


def test_publishers_that_are_not_reward_nodes_are_not_refused_and_the_unaskable_named(
        bench, checkpoint_for, capfd):
    """Beside the reward node, a replay node taking undeclared parameters (its get_parameters
    answers NOT_SET for sync_slop) and a relay with its parameter services off publish on the
    results topic: the first call is not refused for the replay (no sync_slop: no reward
    node), names the relay it could not ask (instead of spending the whole discovery budget
    on it), names the one whose node name never came and gets the classifier's answer."""
    import rclpy
    unknown = '_NODE_NAMESPACE_UNKNOWN_/_NODE_NAME_UNKNOWN_'
    from hil_serl_reward.ros import classification
    checkpoint = checkpoint_for(KEYS)
    serve(bench, checkpoint)
    others = [rclpy.create_node('replay', namespace=bench.namespace,
                                allow_undeclared_parameters=True),
              rclpy.create_node('relay', namespace=bench.namespace,
                                start_parameter_services=False)]
    for node in others:
        node.create_publisher(classification.Classification, 'classification', 10)
        bench.add(node)
    func = remote(bench)
    try:
        client = func.remote.client
        bench.wait(lambda: len(client.publishers()) == 3, 10, 'three publishers')
        graph = client.publishers       # and one whose name rmw never learns (its graph
        client.publishers = lambda: graph() + [unknown]    # message lost: not made on demand)
        obs = ScriptedEnv(['white']).observe()
        assert func(obs)[0] == pytest.approx(in_process(checkpoint)(obs)[0], abs=1e-4)
        printed = []
        bench.wait(lambda: printed.append(capfd.readouterr().err)
                   or 'could not check' in ''.join(printed), 5, 'the warning')
        warning = next(line for line in ''.join(printed).splitlines()
                       if 'could not check' in line)
        assert (f'could not check the sync_slop of {bench.namespace}/relay (its parameter '
                f'service did not answer within 5 s); a node whose name did not reach this '
                f'process within 5 s, publishing on {bench.namespace}/classification'
                ) in warning, warning
        assert 'replay' not in warning and 'hil_serl_reward' not in warning, warning
    finally:
        close(func)
        for node in others:
            bench.remove(node)


RL_DOC = Path(__file__).resolve().parents[1] / 'docs' / 'rl.md'


def rl_snippet(containing):
    """The python block of docs/rl.md that contains `containing`, as written there."""
    blocks = [b for b in re.findall(r'```python\n(.*?)```', RL_DOC.read_text(), re.S)
              if containing in b]
    assert len(blocks) == 1, f'{len(blocks)} python blocks of docs/rl.md contain {containing!r}'
    return blocks[0]


def run_snippet(code, env, keys=KEYS):
    """Runs a docs/rl.md snippet in a hil-serl config's scope: `self.classifier_keys`, `env`,
    `classifier` (the config's flag), hil-serl's wrappers; returns the env it made."""
    import jax
    import hil_serl_wrappers
    scope = {'jax': jax, 'os': os, 'env': env, 'classifier': True,
             'self': types.SimpleNamespace(classifier_keys=list(keys)),
             'EggClassifierWrapper': hil_serl_wrappers.EggClassifierWrapper,
             'MultiStageBinaryRewardClassifierWrapper':
                 hil_serl_wrappers.MultiStageBinaryRewardClassifierWrapper}
    exec(compile(code, str(RL_DOC), 'exec'), scope)    # noqa: S102 - the documentation's code
    return scope['env']


def closing(env):
    """Closes the clients a snippet's loaders made (the wrappers hold them)."""
    funcs = getattr(env, 'reward_classifier_func', None)
    funcs = funcs if isinstance(funcs, list) else [funcs] if funcs else []
    close(*[f for f in funcs if hasattr(f, 'remote')])
    if hasattr(env, 'remote'):
        env.close()


SNIPPET_ACTOR = """
import json, sys, time
marks = [('start', time.monotonic())]
sys.path.insert(0, {test_dir!r})
from test_remote_classifier import ScriptedEnv, closing, rl_snippet, run_snippet, trajectory
marks.append(('imports', time.monotonic()))
env = run_snippet(rl_snippet({containing!r}),
                  ScriptedEnv({script!r}, gripper={gripper!r}, keys={keys!r}), {keys!r})
marks.append(('snippet', time.monotonic()))
try:
    rewards = [step[0] for step in trajectory(env, {steps})[1:]]
    marks.append(('steps', time.monotonic()))
finally:
    closing(env)
marks.append(('close', time.monotonic()))
print(json.dumps({{name: round(t - before, 2)
                  for (_, before), (name, t) in zip(marks, marks[1:])}}))
print(json.dumps(rewards))
"""
# 1-7 s is usual; now and then 17-118 s before each of check_sync_slop's waits was bounded
# (5 s): the 116 s of a two-stage actor were likely 2 x 2 waits of the rest of its 30 s
# discovery budget; not proven (not reproduced on demand).
SLOW_ACTOR_S = 60.0


def snippet_rewards(containing, script, steps, keys=KEYS, gripper=0.0):
    """The rewards of an actor process running a docs/rl.md snippet (its own DDS participant,
    as an actor has) on a ScriptedEnv."""
    code = SNIPPET_ACTOR.format(test_dir=str(Path(__file__).resolve().parent),
                                containing=containing, script=script, gripper=gripper,
                                keys=tuple(keys), steps=steps)
    start = time.monotonic()
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    phases, rewards = [json.loads(line) for line in done.stdout.strip().splitlines()[-2:]]
    took = time.monotonic() - start
    if took > SLOW_ACTOR_S:     # a clue for CI's log (warnings summary), not a verdict
        warnings.warn(f'snippet actor {containing!r} took {took:.0f} s, phases (s): {phases}, '
                      f'its log: {done.stderr[-1500:]!r}')     # e.g. 'could not check'
    return rewards


def test_the_docs_rl_snippets_run_as_written(bench, tmp_path):
    """docs/rl.md's config snippets, as written, against nodes in the namespaces they name
    (the root and /stage_1, /stage_2): the egg flip (hil-serl's wrapper, and the package's
    with ClassFlip), the two stages (a node each, then one node serving both), the package's
    wrapper with ram_insertion's gripper check."""
    from ros_harness import Bench
    stages = [Bench(), Bench()]
    try:
        from hil_serl_reward.ros import config
        from hil_serl_reward.ros.params_file import read_node_parameters
        yaml_block = re.search(r'```yaml\n(.*?)```', RL_DOC.read_text(), re.S).group(1)
        (tmp_path / 'egg.yaml').write_text(yaml_block)
        params = read_node_parameters(tmp_path / 'egg.yaml')      # the node's, as written
        keys = tuple(params['image_keys'])
        bench.namespace = ''                                   # the snippets' root namespace
        bench.start_node(**{**params, 'camera_timeout': 60.0, 'checkpoint_path': str(
            decisive_checkpoint(tmp_path / 'egg', len(params['class_names']), 3, keys))})
        assert snippet_rewards('EggClassifierWrapper(env', ['noise5', 'noise5', 'black'], 4,
                               keys=keys) == [0, 1]
        assert snippet_rewards('ClassFlip((', ['noise5', 'noise5', 'black'], 4,
                               keys=keys) == [0, 1]
        bench.remove(bench.node)
        for stage, (name, seed) in zip(stages, (('/stage_1', 1), ('/stage_2', 2))):
            stage.namespace = name
            serve(stage, decisive_checkpoint(tmp_path / name[1:], 2, seed))
        assert snippet_rewards('namespace=f"/stage_{i}"',
                               ['black', 'cyan', 'cyan', 'white'], 5) == [1, 0, 1]
        for stage in stages:                # the same stages on one node, at the root,
            stage.remove(stage.node)        # from docs/rl.md's params block for it
        stage_yaml = [block for block in re.findall(r'```yaml\n(.*?)```', RL_DOC.read_text(),
                                                    re.S) if 'stages:' in block]
        assert len(stage_yaml) == 1
        (tmp_path / 'stages.yaml').write_text(stage_yaml[0])
        params = read_node_parameters(tmp_path / 'stages.yaml')
        assert config.check(params) == [] and params['stages'] == ['stage_1', 'stage_2']
        bench.start_node(**{**params, 'camera_timeout': 60.0,
                            **{f'stage_{i}.checkpoint_path': str(tmp_path / f'stage_{i}')
                               for i in (1, 2)}})
        assert snippet_rewards('load_stage_classifier_funcs(',
                               ['black', 'cyan', 'cyan', 'white'], 5) == [1, 0, 1]
        bench.remove(bench.node)
        serve(bench, decisive_checkpoint(tmp_path / 'binary', 2, seed=2))
        assert snippet_rewards('above_threshold(probability, 0.7)', ['black', 'blue', 'white'],
                               4, gripper=1.0) == [0, 1]
    finally:
        for stage in stages:
            stage.close()
