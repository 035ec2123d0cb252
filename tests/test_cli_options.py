"""One option vocabulary across commands (issue 14): the shared options have one help text,
``-o/--out`` is every writing command's output folder, no command receives an argument it never
reads, and the old spellings (search ``--report`` / ``-o FILE.yaml``, preview ``--output`` /
``-o FILE.png``) still work for one release, with a one-line deprecation warning."""

import ast
import inspect
import re
import textwrap

import click
import pytest
from PIL import Image

from augcli.cli import options
from augcli.cli.main import commands
from tests.helpers import invoke, write_strategy

WRITERS = ("run", "evaluate", "inspect", "search", "preview")
SHARED = {"overrides": options.overrides, "input_source": options.input_source, "seed": options.seed,
          "as_json": options.json_output, "overwrite": options.overwrite, "limit": options.limit,
          "verbosity": options.verbosity}


def _declared(decorator) -> list[click.Parameter]:
    """The parameters a shared decorator from cli/options.py declares."""
    return list(click.command()(decorator(lambda **kw: None)).params)


def _options(command: str) -> dict[str, click.Parameter]:
    return {p.name: p for p in commands()[command].params if isinstance(p, click.Option)}


@pytest.mark.parametrize("shared", sorted(SHARED))
def test_a_shared_option_reads_the_same_in_every_command(shared):
    for declared in _declared(SHARED[shared]):
        users = [name for name in commands() if declared.name in _options(name)]
        assert users, declared.name
        for name in users:
            info = _options(name)[declared.name].to_info_dict()
            assert info == declared.to_info_dict(), f"augcli {name}: {declared.name} differs from cli/options.py"


def test_overwrite_limit_and_the_strategy_inputs_are_where_they_make_sense():
    for name in WRITERS:
        assert "overwrite" in _options(name), name
    for name in ("run", "evaluate", "inspect", "search", "preview", "validate"):
        assert {"input_source", "seed", "overrides"} <= set(_options(name)), name
    for name in ("run", "evaluate", "inspect", "search"):
        assert "limit" in _options(name), name


def test_out_is_the_output_folder_of_every_writing_command():
    pattern = re.escape(options.OUT_HELP).replace(re.escape("{default}"), r"(output\.dir, else )?data/out/[^()]+")
    for name in commands():
        out = _options(name).get("out")
        if name not in WRITERS:
            assert out is None, f"augcli {name} writes nothing but has -o/--out"
            continue
        assert out is not None and out.opts == ["-o", "--out"], name
        assert isinstance(out.type, options.FolderPath) and not out.type.file_okay and out.metavar == "FOLDER"
        assert re.fullmatch(pattern, out.help), f"augcli {name}: {out.help}"


@pytest.mark.parametrize("name", sorted(commands()))
def test_no_command_receives_an_argument_it_does_not_read(name):
    callback = commands()[name].callback
    params = set(inspect.signature(callback).parameters)
    assert not params & {"verbose", "quiet"}, f"augcli {name}: -v/-q live in ctx.meta (options.is_quiet)"
    tree = ast.parse(textwrap.dedent(inspect.getsource(callback)))
    read = {n.id for n in ast.walk(tree.body[0]) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert params <= read, f"augcli {name} never reads {sorted(params - read)}"


def test_verbose_and_quiet_are_recorded_not_passed(tmp_path):
    for name in commands():
        flags = [p for p in commands()[name].params if p.name in ("verbose", "quiet")]
        assert len(flags) == 2 and not any(p.expose_value for p in flags), name
    quiet = invoke("validate", "-q", tmp_path / "missing.yaml")
    assert quiet.exit_code == 2 and quiet.stdout == ""
    strategy = write_strategy(tmp_path / "s.yaml", "dataset: {source: digits}\n")
    assert invoke("validate", strategy, "-q").stdout == ""
    assert invoke("validate", strategy, "-v").stdout.startswith("# ")


# --- the deprecated spellings, and preview's folder ---------------------------------------------

STRATEGY = "version: 1\nseed: 0\ndataset: {source: digits, limit: 200}\naugment: {copies: 1, pipeline: [hflip]}\n"
SEARCH = ("--model", "knn", "--budget", "2", "--folds", "2", "--train-fraction", "0.3", "--repeats", "1")
PREVIEW = ("--rows", "2", "--copies", "2")


@pytest.fixture
def strategy(tmp_path):
    return write_strategy(tmp_path / "s.yaml", STRATEGY)


FEW = "the 95 % intervals are wide"  # search --repeats 1 says so too; not what these tests are about


def _stderr(res) -> list[str]:
    return [line for line in res.stderr.splitlines() if FEW not in line]


def _warning(res) -> str:
    lines = _stderr(res)
    assert len(lines) == 1 and lines[0].startswith("augcli: warning: "), res.stderr
    assert "deprecated" in lines[0]
    return lines[0]


def test_search_report_is_the_old_name_of_out(strategy, tmp_path):
    new = invoke("search", strategy, *SEARCH, "-o", tmp_path / "new")
    old = invoke("search", strategy, *SEARCH, "--report", tmp_path / "old")
    assert new.exit_code == 0 and old.exit_code == 0, new.output + old.output
    assert _stderr(new) == [] and f"--report {tmp_path / 'old'}" in _warning(old) and "use -o/--out" in old.stderr
    assert (tmp_path / "new" / "tuned.yaml").read_bytes() == (tmp_path / "old" / "tuned.yaml").read_bytes()
    assert {p.name for p in (tmp_path / "old").iterdir()} == {p.name for p in (tmp_path / "new").iterdir()}


def test_search_out_ending_in_yaml_is_the_old_name_of_tuned(strategy, tmp_path):
    new = invoke("search", strategy, *SEARCH, "-o", tmp_path / "a", "--tuned", tmp_path / "new.yaml")
    old = invoke("search", strategy, *SEARCH, "--report", tmp_path / "b", "-o", tmp_path / "old.yml", "-q")
    assert new.exit_code == 0 and old.exit_code == 0, new.output + old.output
    assert old.stderr == ""  # -q silences the deprecation warnings too
    assert (tmp_path / "new.yaml").read_bytes() == (tmp_path / "old.yml").read_bytes()
    alone = invoke("search", strategy, *SEARCH, "-o", tmp_path / "again.yaml", "--overwrite")
    assert alone.exit_code == 0 and "use --tuned" in _warning(alone)
    assert (tmp_path / "again.yaml").read_bytes() == (tmp_path / "new.yaml").read_bytes()


@pytest.mark.parametrize("args, fragment", [
    (["--report", "a", "-o", "b"], "both name the report folder"),
    (["-o", "t.yaml", "--tuned", "u.yaml"], "both name the tuned strategy"),
])
def test_search_refuses_two_names_for_one_output(strategy, args, fragment):
    res = invoke("search", strategy, *args, "-q")
    assert res.exit_code == 2 and res.stderr.startswith("augcli: error: ") and fragment in res.stderr
    assert len(res.stderr.splitlines()) == 1


def test_preview_writes_preview_png_into_its_output_folder(strategy, tmp_path):
    out = tmp_path / "pv"
    res = invoke("preview", strategy, *PREVIEW, "-o", out)
    assert res.exit_code == 0 and res.stderr == "" and f"wrote {out / 'preview.png'}" in res.stdout
    assert sorted(p.name for p in out.iterdir()) == [".augcli-output", "preview.png"]
    first = (out / "preview.png").read_bytes()
    again = invoke("preview", strategy, *PREVIEW, "-o", out)
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    assert invoke("preview", strategy, *PREVIEW, "-o", out, "--overwrite", "-q").exit_code == 0
    assert (out / "preview.png").read_bytes() == first  # the same draw, replaced atomically


def test_preview_overwrite_refuses_a_foreign_folder(strategy, tmp_path):
    foreign = tmp_path / "holiday"
    foreign.mkdir()
    Image.new("RGB", (4, 4)).save(foreign / "preview.png")
    before = (foreign / "preview.png").read_bytes()
    res = invoke("preview", strategy, *PREVIEW, "-o", foreign, "--overwrite")
    assert res.exit_code == 2 and "not made by augcli" in res.stderr
    assert (foreign / "preview.png").read_bytes() == before and len(list(foreign.iterdir())) == 1


def test_preview_default_folder_is_named_after_the_strategy(strategy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke("preview", strategy, *PREVIEW, "-q").exit_code == 0
    assert (tmp_path / "data" / "out" / "preview" / "s" / "preview.png").is_file()


@pytest.mark.parametrize("spelling", ["--output", "-o"])
def test_preview_single_file_spellings_still_write_one_png(strategy, tmp_path, spelling):
    assert invoke("preview", strategy, *PREVIEW, "-o", tmp_path / "pv").exit_code == 0
    res = invoke("preview", strategy, *PREVIEW, spelling, tmp_path / "old.png")
    assert res.exit_code == 0 and f"{spelling}" in _warning(res) and "use -o/--out FOLDER" in res.stderr
    assert (tmp_path / "old.png").read_bytes() == (tmp_path / "pv" / "preview.png").read_bytes()
    # as before: a rerun replaces its own picture without --overwrite, and nothing else ever
    assert invoke("preview", strategy, *PREVIEW, spelling, tmp_path / "old.png", "-q").exit_code == 0
    Image.new("RGB", (4, 4)).save(tmp_path / "photo.png")
    res = invoke("preview", strategy, *PREVIEW, spelling, tmp_path / "photo.png", "-q")
    assert res.exit_code == 2 and "not written by augcli" in res.stderr


def test_preview_refuses_two_names_for_its_output(strategy, tmp_path):
    res = invoke("preview", strategy, "--output", tmp_path / "a.png", "-o", tmp_path / "b", "-q")
    assert res.exit_code == 2 and "both name the output" in res.stderr and len(res.stderr.splitlines()) == 1


# --- inspect's new shared options ---------------------------------------------------------------

def test_inspect_takes_input_seed_and_set_with_a_strategy(strategy, tmp_path):
    res = invoke("inspect", strategy, "--input", "digits", "--seed", 3, "--set", "dataset.limit=50",
                 "--limit", 40, "-o", tmp_path / "i", "--json", "-q")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "i" / "inspect.json").is_file() and (tmp_path / "i" / ".augcli-output").is_file()


def test_inspect_input_needs_a_strategy(tmp_path):
    res = invoke("inspect", "digits", "--input", "digits", "-o", tmp_path / "i")
    assert res.exit_code == 2 and "--input needs a STRATEGY" in res.stderr and len(res.stderr.splitlines()) == 1
    assert not (tmp_path / "i").exists()
