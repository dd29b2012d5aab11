"""Reading a node's parameters from ROS 2 params YAML files without ROS, as rcl does.

What a node gets (measured with rclpy on Jazzy and Kilted, test_params_file.py): every
section whose name matches the node's fully qualified name counts — `/**` (any node),
`/**/name` (that name in any namespace), `/*/name` (one namespace level), `/ns/*`, the exact
`/ns/name`, and a name without a leading '/' (the root namespace). Sections are taken in the
order their names first appear across the files, a later one overriding an earlier one;
a name repeated in a later file keeps its first place and its values are updated there.
The launch file and every tool use this, so they read what the node will run with.
"""
import re
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import yaml

NODE_NAME = 'hil_serl_reward'
PathLike = Union[str, Path]
# A rig's params file is a few KB; 3 MB of '[' made PyYAML recurse until RecursionError.
MAX_PARAMS_FILE_BYTES = 1 << 20


class ParamsFileError(ValueError):
    """A params file that cannot be read as `node_name: ros__parameters: ...` sections."""


class WrittenInt(int):
    """An integer written with a leading zero, with the text it was written as (`written`).
    YAML 1.1 (PyYAML) and rcl read an unquoted 036522070660 as the octal number 4115165616,
    and some RealSense serial numbers start with 0: a driver's serial taken as a number
    opens no camera. The value stays what rcl gives the node; the text is the serial."""
    written: str


class _ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader, integers with a leading zero read as WrittenInt."""


def _int_as_written(loader: _ParamsLoader, node: yaml.ScalarNode) -> int:
    value = loader.construct_yaml_int(node)
    if re.fullmatch(r'[-+]?0[0-9_]+', node.value):
        value = WrittenInt(value)
        value.written = node.value
    return value


_ParamsLoader.add_constructor('tag:yaml.org,2002:int', _int_as_written)


def read_params_document(path: PathLike) -> Dict[str, Any]:
    """The YAML mapping of a params file, or ParamsFileError saying in one line why not."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_PARAMS_FILE_BYTES:
            raise ParamsFileError(f"parameters file '{path}' is {size / 2**20:.1f} MiB; a "
                                  f"params file takes at most {MAX_PARAMS_FILE_BYTES >> 20} MiB")
        with Path(path).open() as f:
            document = yaml.load(f, Loader=_ParamsLoader)     # a SafeLoader
    except OSError as exc:
        raise ParamsFileError(f"cannot read parameters file '{path}': {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ParamsFileError(f"parameters file '{path}' is not valid YAML: "
                              f"{' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ParamsFileError(f"parameters file '{path}' is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ParamsFileError(f"parameters file '{path}' is not UTF-8 text: {exc}") from None
    if not isinstance(document, dict):
        found = 'nothing' if document is None else type(document).__name__
        raise ParamsFileError(f"parameters file '{path}' holds {found}, not a mapping of "
                              f"node names to their ros__parameters")
    return document


def _pattern(section: str) -> 're.Pattern[str]':
    """rcl's wildcards: '/**' any number of levels (none too), '*' exactly one name."""
    name = section if section.startswith('/') else '/' + section
    parts = []
    for token in name.split('/')[1:]:
        if token == '**':
            parts.append(r'(?:/[^/]+)*')
        else:
            parts.append('/' + re.escape(token).replace(r'\*', '[^/]+'))
    return re.compile(''.join(parts))


def full_name(node_name: str, namespace: str = '/') -> str:
    namespace = '/' + namespace.strip('/') if namespace.strip('/') else ''
    return f'{namespace}/{node_name}'


def _sections(paths: Sequence[PathLike]) -> Dict[str, Dict[str, Any]]:
    """Section name -> flattened ros__parameters, in first-appearance order over the files."""
    merged: Dict[str, Dict[str, Any]] = {}
    for path in paths:
        for name, section in read_params_document(path).items():
            if isinstance(section, dict) and isinstance(section.get('ros__parameters'), dict):
                merged.setdefault(str(name), {}).update(flatten(section['ros__parameters']))
    return merged


def node_parameters(paths: Union[PathLike, Sequence[PathLike]], node_name: str = NODE_NAME,
                    namespace: str = '/') -> Dict[str, Any]:
    """The parameters `paths` give the node `namespace`/`node_name`, flattened to the dotted
    names it declares (cameras.<key>.crop, ...). Raises ValueError when no section applies."""
    files: List[PathLike] = [paths] if isinstance(paths, (str, Path)) else list(paths)
    fqn = full_name(node_name, namespace)
    sections = _sections(files)
    values: Dict[str, Any] = {}
    matched = False
    for name, parameters in sections.items():
        if _pattern(name).fullmatch(fqn):
            values.update(parameters)
            matched = True
    if not matched:
        raise ValueError(f"{', '.join(map(str, files))}: no section applies to node '{fqn}' "
                         f"(sections: {list(sections)}; e.g. '/**:' or '/**/{node_name}:')")
    return values


def read_node_parameters(path: PathLike, node_name: str = NODE_NAME,
                         namespace: str = '/') -> Dict[str, Any]:
    """One params file's parameters for the node (see node_parameters)."""
    return node_parameters([path], node_name, namespace)


def flatten(tree: Dict[str, Any], prefix: str = '') -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in tree.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(flatten(value, name + '.'))
        else:
            flat[name] = value
    return flat
