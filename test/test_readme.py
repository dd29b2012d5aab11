"""README.md is the user's manual: every parameter, launch argument, topic and executable the
code declares is there, and the defaults it gives are the code's."""
import ast
import re
from pathlib import Path
from typing import Dict, List

import pytest

from hil_serl_reward.ros import classification, config
from test_launch_files import console_scripts

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / 'README.md').read_text()


def table(heading: str) -> Dict[str, List[str]]:
    """Rows of the first table under `heading`, keyed by every `name` in their first cell."""
    lines = README.split(f'\n{heading}\n', 1)[1].splitlines()
    rows: Dict[str, List[str]] = {}
    for line in lines:
        if line.startswith('#'):
            break
        if line.startswith('|'):
            cells = [cell.strip() for cell in line.strip('|').split('|')]
            for name in re.findall(r'`([^`]+)`', cells[0]):
                rows[name] = cells
    assert rows, f'no table under {heading!r}'
    return rows


def as_documented(value) -> str:
    """How the parameter table writes a default."""
    if isinstance(value, bool):
        return str(value).lower()
    if value == '':
        return "''"
    return str(value)


@pytest.mark.parametrize('parameter', config.NODE_PARAMETERS, ids=lambda p: p.name)
def test_node_parameters_with_their_defaults(parameter):
    rows = table('### Parameters')
    assert parameter.name in rows, f'README lacks node parameter {parameter.name}'
    assert rows[parameter.name][1] == f'`{as_documented(parameter.default)}`'


def test_camera_parameters():
    rows = table('### Parameters')
    for parameter in config.CAMERA_PARAMETERS:
        assert f'cameras.<key>.{parameter.name}' in rows


def test_recorder_parameters():
    paragraph = README.split('**record_data**', 1)[1].split('\n\n', 1)[0]
    shared = {p.name for p in config.NODE_PARAMETERS}
    for parameter in config.RECORDER_PARAMETERS:
        if parameter.name not in shared:
            assert f'`{parameter.name}`' in paragraph, parameter.name


def launch_arguments() -> Dict[str, str]:
    tree = ast.parse((ROOT / 'launch' / 'classifier.launch.py').read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == 'ARGUMENTS':
            return {item.elts[0].value: item.elts[1].value for item in node.value.elts}
    raise AssertionError('classifier.launch.py has no ARGUMENTS list')


def test_launch_arguments_with_their_defaults():
    rows = table('### classifier.launch.py arguments')
    for name, default in launch_arguments().items():
        assert name in rows, f'README lacks launch argument {name}'
        if default:
            assert f'`{default}`' in rows[name][1], (name, default, rows[name][1])


def node_interfaces(path: Path) -> List[str]:
    """Topic and service names given as literals to create_*publisher / create_service (or
    through a rig's `topic('<name>')`, its outputs under its namespace)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and len(node.args) > 1 and (
                isinstance(node.func, ast.Attribute) and node.func.attr in (
                    'create_publisher', 'create_lifecycle_publisher', 'create_service')
                or isinstance(node.func, ast.Name) and node.func.id == 'create')):
            continue
        name = node.args[1]
        if (isinstance(name, ast.Call) and isinstance(name.func, ast.Attribute)
                and name.func.attr == 'topic' and name.args):
            name = name.args[0]
        if isinstance(name, ast.Constant):
            names.append(name.value)
    return names


def test_node_topics_and_services():
    rows = table('### Topics')
    names = [name for module in ('classifier_node', 'rig', 'diagnostics')
             for name in node_interfaces(ROOT / 'hil_serl_reward' / 'ros' / f'{module}.py')]
    assert {'reward', 'success', 'probability', '/diagnostics', '~/reload', 'class',
            '~/debug_image'} <= set(names)
    names.append(classification.TOPIC)     # created only where vision_msgs imports
    for name in names:
        assert name in rows, f'README lacks {name}'


def test_executables():
    rows = table('## Tools')
    for script in console_scripts():
        assert script in rows, f'README lacks executable {script}'


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation but `-` and `_` dropped, spaces
    to dashes."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


@pytest.mark.parametrize('document', ['README.md', *sorted(
    f'docs/{path.name}' for path in (ROOT / 'docs').glob('*.md'))])
def test_links_lead_somewhere(document):
    """A manual is read by following its links: every in-page anchor names a heading and
    every relative link names a file of this repository."""
    path = ROOT / document
    text = path.read_text()
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if target.startswith(('http://', 'https://')):
            continue
        file, _, anchor = target.partition('#')
        linked = path.parent / file if file else path
        assert linked.exists(), f'{document}: {target}'
        if anchor and linked.suffix == '.md':
            headings = re.findall(r'^#+ (.+)$', linked.read_text(), re.M)
            assert anchor in {github_anchor(h) for h in headings}, \
                f'{document}: no heading for {target}'
