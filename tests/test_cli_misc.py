"""`transforms`, `validate`, `preview`, `--help` of every command, and docs generated from the registry."""

import json
from pathlib import Path

import pytest
from PIL import Image

from augcli.cli.docgen import DOCS
from augcli.cli.main import commands
from augcli.transforms import load_all
from tests.helpers import invoke, write_strategy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", sorted(commands()))
def test_help(command):
    res = invoke(command, "--help")
    assert res.exit_code == 0 and "Usage:" in res.output


def test_transforms_lists_the_registry():
    res = invoke("transforms")
    assert res.exit_code == 0
    for name in load_all():
        assert f"\n{name} " in "\n" + res.output
    assert f"{len(load_all())} transforms" in res.output


def test_transform_detail_and_misspelling():
    res = invoke("transforms", "rotate")
    assert res.exit_code == 0 and "degrees" in res.output and "default" in res.output
    res = invoke("transforms", "rotat")
    assert res.exit_code == 2 and "did you mean 'rotate'" in res.output


@pytest.mark.parametrize("name", sorted(DOCS))
def test_generated_docs_are_current(name):
    """docs/{strategy,cli,transforms}.md are generated: run `python -m augcli.cli.docgen` (or `make docs`)."""
    assert (ROOT / "docs" / name).read_text(encoding="utf-8") == DOCS[name](), f"docs/{name} is stale: run make docs"


def test_validate_prints_resolved_strategy(tmp_path):
    res = invoke("validate", ROOT / "configs" / "digits.yaml")
    assert res.exit_code == 0
    assert "valid" in res.output.splitlines()[0] and "keep_originals: true" in res.output


def test_validate_fills_the_defaults_inside_pipeline_entries(tmp_path):
    """Every transform parameter is shown, and what validate prints is a strategy that builds the
    same transforms (containers included)."""
    import yaml

    from augcli.config.strategy import load_strategy

    strategy = write_strategy(tmp_path / "s.yaml", "dataset: {source: digits}\naugment:\n  pipeline:\n    - hflip\n"
                                                   "    - affine: {degrees: 10}\n    - one_of: {transforms: [vflip, gaussian_blur]}\n")
    res = invoke("validate", strategy)
    assert res.exit_code == 0, res.output
    printed = yaml.safe_load(res.stdout)
    pipeline = printed["augment"]["pipeline"]
    assert pipeline[0] == {"hflip": {"p": 0.5}}
    assert pipeline[1]["affine"]["degrees"] == [-10.0, 10.0] and {"scale", "translate", "shear", "fill"} <= set(pipeline[1]["affine"])
    assert {"p", "sigma", "truncate"} <= set(pipeline[2]["one_of"]["transforms"][1]["gaussian_blur"])
    again = write_strategy(tmp_path / "again.yaml", res.stdout)
    assert [repr(t) for t in load_strategy(again).transforms] == [repr(t) for t in load_strategy(strategy).transforms]
    as_json = json.loads(invoke("validate", strategy, "--json").stdout)
    assert as_json["strategy"]["augment"]["pipeline"] == pipeline


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(config):
    res = invoke("validate", config, "-q")
    assert res.exit_code == 0, res.output


def test_preview_writes_a_png(tmp_path):
    out = tmp_path / "p"
    res = invoke("preview", ROOT / "configs" / "digits.yaml", "-o", out, "--rows", 3, "--copies", 4)
    assert res.exit_code == 0, res.output
    img = Image.open(out / "preview.png")
    assert img.size[0] > 5 * 64 and img.size[1] > 3 * 64
    per = tmp_path / "per"
    assert invoke("preview", ROOT / "configs" / "digits.yaml", "-o", per, "--per-transform").exit_code == 0
    assert Image.open(per / "preview.png").size[1] > 0


def _chunks(png: bytes):
    """(type, data, crc ok) of every chunk of a PNG file's bytes."""
    import struct
    import zlib

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        body = png[pos + 4:pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])
        chunks.append((body[:4], body[4:], zlib.crc32(body) == crc))
        pos += 12 + length
    return chunks


def test_preview_png_is_well_formed_signed_and_lossless():
    import io

    import numpy as np

    from augcli.reporting.preview import PREVIEW_SIGNATURE, png_bytes

    pixels = np.arange(40 * 30 * 3, dtype=np.uint32).reshape(40, 30, 3).astype(np.uint8)
    png = png_bytes(Image.fromarray(pixels))
    chunks = _chunks(png)
    assert all(ok for _, _, ok in chunks)
    assert [t for t, _, _ in chunks][:2] == [b"IHDR", b"tEXt"] and chunks[-1][0] == b"IEND"
    assert chunks[1][1] == b"Software\0" + PREVIEW_SIGNATURE
    back = Image.open(io.BytesIO(png))
    assert back.info["Software"] == PREVIEW_SIGNATURE.decode() and np.array_equal(np.asarray(back), pixels)


def test_version_and_module_entry_point():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "augcli", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "augcli" in res.stdout


def test_unknown_error_has_no_traceback(tmp_path):
    bad = write_strategy(tmp_path / "s.yaml", "dataset: {source: digits}\naugment: {copies: 1}\n")
    res = invoke("run", bad, "--out", tmp_path / "o", "--batch-size", 0)
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_readme_strategy_example_is_valid(tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## A strategy", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    res = invoke("validate", write_strategy(tmp_path / "readme.yaml", block), "-q")
    assert res.exit_code == 0, res.output
    res = invoke("run", tmp_path / "readme.yaml", "--out", tmp_path / "o", "--limit", 200, "-q")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("args, fragment", [
    (["run"], "Missing argument 'STRATEGY'"),
    (["run", "x.yaml", "--bogus"], "--bogus"),
    (["run", "x.yaml", "--workers", "zero"], "'zero' is not a valid integer"),
    (["frobnicate"], "No such command 'frobnicate'"),
])
def test_usage_errors_are_one_line_exit_2(args, fragment):
    res = invoke(*args)
    assert res.exit_code == 2
    line = res.output.strip()
    assert line.startswith("augcli: error: ") and fragment in line and "\n" not in line


def test_bare_augcli_prints_the_usual_help():
    """No arguments: the same help as ``augcli --help``, on stdout, exit 0 (not one escaped error line)."""
    import subprocess
    import sys

    bare = subprocess.run([sys.executable, "-m", "augcli"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    asked = subprocess.run([sys.executable, "-m", "augcli", "--help"], capture_output=True, text=True, cwd=ROOT,
                           timeout=60)
    assert bare.returncode == 0 and bare.stderr == ""
    assert bare.stdout == asked.stdout and bare.stdout.startswith("Usage: augcli [OPTIONS] COMMAND")
    assert "\n  run " in bare.stdout and "\\n" not in bare.stdout


def test_per_transform_preview_shows_a_textured_sample_and_full_names(digits_images):
    """A flat sample hides flips and crops: the most textured one is shown; long transform names are
    written whole (the margin is as wide as the longest)."""
    import numpy as np
    from PIL import ImageDraw

    from augcli.datasets.base import Dataset
    from augcli.pipeline import Pipeline
    from augcli.reporting.preview import _stack_rows, most_textured, preview_grid

    images = np.full((3, 16, 16, 1), 120, np.uint8)
    images[2, ::2] = 0  # stripes: the only texture
    data = Dataset(images, np.array([0, 1, 0]), np.array(["flat0", "flat1", "striped"]), ["a", "b"])
    assert most_textured(data).tolist() == [2]
    grid = preview_grid(data.subset(np.array([0])), Pipeline.from_config(["hflip"], seed=0), 1, 2)
    names = ["random_resized_crop", "pipeline"]
    stacked = _stack_rows([grid, grid], names)
    assert stacked.width >= grid.width - 56 + ImageDraw.Draw(stacked).textlength("random_resized_crop")
