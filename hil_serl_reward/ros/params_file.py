"""Reading a node's parameters from ROS 2 params YAML files without ROS, as rcl does.

What a node gets (measured with rclpy on Jazzy and Kilted, test_params_file.py): every
section whose name matches the node's fully qualified name counts — `/**` (any node),
`/**/name` (that name in any namespace), `/*/name` (one namespace level), `/ns/*`, the exact
`/ns/name`, and a name without a leading '/' (the root namespace). Sections are taken in the
order their names first appear across the files, a later one overriding an earlier one;
a name repeated in a later file keeps its first place and its values are updated there.
Values are typed as rcl types them (rcl_value: `1e-9` a double, `y` true, `12:30` text),
not as YAML 1.1 does. The launch file and every tool use this, so they read what the node
will run with.
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
    rcl reads an unquoted 036522070660 as the octal number 4115165616, and some RealSense
    serial numbers start with 0: a driver's serial taken as a number opens no camera. The
    value stays what rcl gives the node; the text is the serial."""
    written: str


class WrittenFloat(float):
    """A number written with a leading zero that rcl reads as a double (0389...: not octal,
    so strtod's decimal), with the text it was written as (`written`)."""
    written: str


_TRUE = frozenset('Y y yes Yes YES true True TRUE on On ON'.split())
_FALSE = frozenset('N n no No NO false False FALSE off Off OFF'.split())
_INFINITIES = {f'{sign}.{word}': float(f'{sign or "+"}inf') for sign in ('', '+', '-')
               for word in ('inf', 'Inf', 'INF')}
_C_INTEGER = re.compile(r'[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)')       # strtol base 0
_C_DECIMAL = re.compile(r'[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?')          # strtod
_C_HEX_FLOAT = re.compile(r'[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)'
                          r'([pP][+-]?\d+)?')
_C_SPECIAL = re.compile(r'[+-]?(inf|infinity|nan)', re.IGNORECASE)
_LEADING_ZERO = re.compile(r'[+-]?0[0-9]+')     # strtol's octal; or strtod's decimal


def rcl_value(text: str) -> Any:
    """An unquoted scalar as rcl's parameter parser types it (rcl_yaml_param_parser's
    get_value): its own bool words (y and n included), then C's strtol (base 0: 0x1F hex,
    017 octal), then strtod (1e-9, .5, inf; a value out of range stays text), else the
    text. YAML 1.1 (PyYAML's) differs: 1e-9 and 1.5e3 are strings there, 1_000 and 12:30
    numbers, 2024-01-01 a date, ~ None, y a string."""
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    if _C_INTEGER.fullmatch(text):
        value = int(text, 8) if _LEADING_ZERO.fullmatch(text) else int(text, 0)
        if -2**63 <= value < 2**63:
            return _as_written(value, text)
    if text in ('.nan', '.NaN', '.NAN'):
        return float('nan')
    if text in _INFINITIES:
        return _INFINITIES[text]
    number = None
    if _C_DECIMAL.fullmatch(text) or _C_SPECIAL.fullmatch(text):
        number = float(text)
    elif _C_HEX_FLOAT.fullmatch(text):
        number = float.fromhex(text)
    if number is None or (number in (float('inf'), float('-inf'))
                          and not _C_SPECIAL.fullmatch(text)):
        return text                                         # not a number, or ERANGE
    if number == 0.0 and re.search(r'[1-9]', text.split('e')[0].split('E')[0]):
        return text                                         # underflow: ERANGE too
    return _as_written(number, text)


def _as_written(value: Union[int, float], text: str) -> Union[int, float]:
    """`value`, as a WrittenInt or WrittenFloat keeping `text` where it was written with a
    leading zero (a serial number's digits)."""
    if not _LEADING_ZERO.fullmatch(text):
        return value
    written = WrittenInt(value) if isinstance(value, int) else WrittenFloat(value)
    written.written = text
    return written


def without_text(value: Any) -> Any:
    """`value` with WrittenInt/WrittenFloat as the plain number rcl gives (for YAML that
    another program dumps: launch_ros writes a subclass as a Python object tag)."""
    if isinstance(value, list):
        return [without_text(item) for item in value]
    return int(value) if isinstance(value, WrittenInt) else \
        float(value) if isinstance(value, WrittenFloat) else value


class _ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader reading values as rcl does (rcl_value: every unquoted scalar
    typed by rcl's rules, quoted ones text) and keys as text (parameter and node names)."""

    yaml_implicit_resolvers = {key: [(tag, regexp) for tag, regexp in resolvers
                                     if tag == 'tag:yaml.org,2002:merge']
                               for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
                               if key == '<'}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Dict[Any, Any]:
        self.flatten_mapping(node)
        mapping: Dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    'while constructing a mapping', node.start_mark,
                    'found a key that is not a name', key_node.start_mark)
            mapping[self.construct_scalar(key_node)] = self.construct_object(value_node, deep)
        return mapping


def _value_as_rcl_reads_it(loader: _ParamsLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    if node.style in ("'", '"'):
        return text
    return None if text == '' else rcl_value(text)      # rcl: "No value" (the node fails)


_ParamsLoader.add_constructor('tag:yaml.org,2002:str', _value_as_rcl_reads_it)


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
