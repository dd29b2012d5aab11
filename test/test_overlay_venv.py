"""bench/overlay_venv.sh: a venv over a Python that has JAX, with wheels on top that win."""
import subprocess
import sys
import zipfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / 'bench' / 'overlay_venv.sh'


def write_wheel(folder: Path, name: str, version: str) -> None:
    """A minimal pure-Python wheel whose module reports `version`."""
    info = f'{name}-{version}.dist-info'
    files = {
        f'{name}/__init__.py': f'__version__ = {version!r}\n',
        f'{info}/METADATA': f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n',
        f'{info}/WHEEL': 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n'
                         'Tag: py3-none-any\n',
    }
    files[f'{info}/RECORD'] = ''.join(f'{path},,\n' for path in files) + f'{info}/RECORD,,\n'
    with zipfile.ZipFile(folder / f'{name}-{version}-py3-none-any.whl', 'w') as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)


def test_wheels_shadow_the_base_and_the_base_still_serves_the_rest(tmp_path):
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    write_wheel(wheels, 'flax', '99.0')
    venv = tmp_path / 'overlay'
    subprocess.run([str(SCRIPT), sys.executable, str(wheels), str(venv)], check=True,
                   capture_output=True, timeout=300)
    probe = 'import flax, jax; print(flax.__version__, jax.__version__)'
    out = subprocess.run([str(venv / 'bin' / 'python'), '-c', probe], check=True,
                         capture_output=True, text=True, timeout=120).stdout.split()
    import jax
    assert out == ['99.0', jax.__version__]
