"""Start-up: `augcli run` imports neither scikit-learn nor SciPy unless a check it runs needs them.

Each run is its own interpreter (a test process has long imported both), which after the command
prints the heavy packages it holds in ``sys.modules``. The control case turns the near-duplicate
check on, which does need SciPy: it shows the probe sees imports made during the run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from augcli.reporting.run_report import versions
from tests.helpers import jpeg_bytes, square, write_strategy, write_tree

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sklearn", "scipy")
# The checks that need SciPy (pHash) or scikit-learn; blank, noise and exact duplicates need neither.
CHECKS_OFF = """\
  near_duplicates: {action: "off"}
  outliers: {action: "off"}
  label_errors: {action: "off"}
  leakage: {action: "off"}
"""
# Runs the CLI in this interpreter, then prints the heavy top-level packages it imported.
PROBE = ("import sys\n"
         "from augcli.cli.main import cli\n"
         "try:\n"
         "    cli(sys.argv[1:])\n"
         "except SystemExit as exit:\n"
         "    code = exit.code\n"
         f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
         "sys.exit(code)\n")


@pytest.fixture
def folder(tmp_path, photo):
    images = {f"{name}/{name}{i}.jpg": jpeg_bytes(square(photo, 150 + 20 * i, 100 + 90 * c, 40), quality=90)
              for c, name in enumerate(["cat", "dog"]) for i in range(5)}
    return write_tree(tmp_path / "imgs", images)


def heavy_imports(tmp_path: Path, folder: Path, clean: str, out_format: str = "png") -> list[str]:
    strategy = write_strategy(tmp_path / "s.yaml", f"""\
dataset: {{source: {folder}}}
clean:
{clean}augment:
  copies: 2
  keep_originals: false
  pipeline: [hflip, gaussian_blur, color_jitter]
output: {{format: {out_format}}}
""")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", PROBE, "run", str(strategy), "--out", str(tmp_path / "out"),
                          "--overwrite", "-q"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "out").rglob("*.png" if out_format == "png" else f"*.{out_format}"))) > 0
    return json.loads(res.stdout.strip().splitlines()[-1].replace("'", '"'))


@pytest.mark.parametrize("out_format", ["png", "npz"])
def test_a_run_with_those_checks_off_imports_neither_sklearn_nor_scipy(tmp_path, folder, out_format):
    assert heavy_imports(tmp_path, folder, CHECKS_OFF, out_format) == []


def test_the_probe_sees_scipy_when_a_check_needs_it(tmp_path, folder):
    near_on = CHECKS_OFF.replace('near_duplicates: {action: "off"}', 'near_duplicates: {action: "flag"}')
    assert "scipy" in heavy_imports(tmp_path, folder, near_on)


def test_the_report_still_names_the_installed_versions():
    import PIL
    import scipy
    import sklearn

    got = versions()
    assert (got["scipy"], got["scikit-learn"], got["pillow"]) == (scipy.__version__, sklearn.__version__, PIL.__version__)


def python(code: str, tmp_path: Path) -> str:
    """Run ``code`` in a fresh interpreter (this repository first on the path); its stdout."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_a_command_imports_only_its_own_module(tmp_path):
    """Each command's module (and what it imports) loads when that command runs: ``--version`` and
    ``validate`` import neither the run engine nor the evaluation."""
    out = python("import sys\n"
                 "from augcli.cli.main import cli\n"
                 "for args in (['--version'], ['validate', '--help']):\n"
                 "    try:\n"
                 "        cli(args)\n"
                 "    except SystemExit:\n"
                 "        pass\n"
                 "print(sorted(m for m in ('augcli.engine.runner', 'augcli.evaluation.api', 'augcli.cli.run',\n"
                 "                         'augcli.cli.validate') if m in sys.modules))\n", tmp_path)
    assert out.strip().splitlines()[-1] == "['augcli.cli.validate']"


def test_run_with_workers_starts_their_server_before_importing_the_engine(tmp_path, folder):
    """The server's imports overlap the command's own: at its start the engine is not imported yet."""
    strategy = write_strategy(tmp_path / "s.yaml", f"dataset: {{source: {folder}}}\nclean:\n{CHECKS_OFF}"
                              "augment: {copies: 1, pipeline: [hflip]}\noutput: {format: npz}\n")
    out = python("import sys\n"
                 "from augcli.engine import workers\n"
                 "real = workers.start_server\n"
                 "def start_server():\n"
                 "    print('engine imported at the start:', 'augcli.engine.runner' in sys.modules)\n"
                 "    return real()\n"
                 "workers.start_server = start_server\n"
                 "from augcli.cli.main import cli\n"
                 f"cli(['run', {str(strategy)!r}, '--out', {str(tmp_path / 'out')!r}, '-q', '--workers', '2'],\n"
                 "    standalone_mode=False)\n", tmp_path)
    assert out.splitlines()[0] == "engine imported at the start: False" and (tmp_path / "out" / "train.npz").exists()
