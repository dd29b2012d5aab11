"""Reading the reward node's section of a ROS 2 params YAML without ROS."""
from pathlib import Path
from typing import Any, Dict

import yaml

NODE_NAME = 'hil_serl_reward'


def read_node_parameters(path: Path, node_name: str = NODE_NAME) -> Dict[str, Any]:
    """`ros__parameters` of `node_name` (any namespace, `/**/` wildcards included),
    flattened to the dotted names the node declares (cameras.<key>.crop, ...)."""
    with Path(path).open() as f:
        document = yaml.safe_load(f) or {}
    for name, section in document.items():
        if str(name).rstrip('/').split('/')[-1] == node_name and 'ros__parameters' in section:
            return flatten(section['ros__parameters'])
    raise ValueError(f"'{path}' has no '{node_name}: ros__parameters:' section "
                     f"(sections: {list(document)})")


def flatten(tree: Dict[str, Any], prefix: str = '') -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in tree.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(flatten(value, name + '.'))
        else:
            flat[name] = value
    return flat
