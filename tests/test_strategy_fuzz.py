"""Hostile strategy files (issue #8): whatever the bytes, `augcli validate` and `augcli run` answer
with exit 0 or exit 2 and, on error, exactly one line ``augcli: error: FILE:LINE: ...``; never a
traceback, never an "internal error", never a Python object built from a YAML tag, never a write.

Fixed cases cover each named hazard; hypothesis covers random documents, random edits of a valid
strategy, random bytes and a wrong-typed value at every key of the schema.
"""

import copy
import re
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augcli.config.strategy import MAX_NODES, strategy_from_text
from tests.helpers import invoke

RICH = """\
version: 1
seed: 5
dataset:
  source: digits
  image_size: [8, 8]
  color_mode: gray
  limit: 40
clean:
  near_duplicates: {action: flag, max_distance: 3}
  outliers: {action: "off", contamination: 0.01}
split:
  val: 0.2
augment:
  copies: 2
  rules:
    - classes: [6, 9]
      forbid: [vflip]
      max_abs: {angle: 20}
  balance: {target: max}
  pipeline:
    - affine: {degrees: 10, scale: [0.9, 1.1], p: 0.5}
    - one_of:
        transforms:
          - gaussian_noise: {std: [0.01, 0.03]}
          - elastic: {alpha: 2.0, sigma: 1.2}
        weights: [1, 2]
    - mixup: {alpha: 0.4, p: 0.2}
output:
  format: npz
  shard_size: 100
report:
  preview: false
"""

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh"))

# name -> (text or bytes, line the error must name)
MALFORMED = {
    "empty": ("", 1),
    "only_comments": ("# nothing here\n\n", 1),
    "binary": (bytes(range(256)) * 8, 1),
    "latin1": ("dataset: {source: caf\xe9}\n".encode("latin-1"), 1),
    "nul_byte": ("seed: 1\ndataset: {source: digits}\n\x00\n", 3),
    "control_char": ("seed: 1\ndataset: {source: \x1bdigits}\n", 2),
    "top_list": ("- dataset\n- augment\n", 1),
    "top_scalar": ("42\n", 1),
    "top_text": ("just some words\n", 1),
    "duplicate_top_key": ("seed: 1\ndataset: {source: digits}\nseed: 2\n", 3),
    "duplicate_nested_key": ("dataset:\n  source: digits\n  source: other\n", 3),
    "tab_indent": ("dataset:\n\tsource: digits\n", 2),
    "unclosed_bracket": ("dataset: {source: digits\naugment: [\n", 2),
    "bad_indent": ("dataset:\n  source: digits\n    kind: folder\n", 3),
    "two_documents": ("dataset: {source: digits}\n---\nseed: 1\n", 2),
    "huge_int": ("seed: 1" + "0" * 400 + "\ndataset: {source: digits}\n", 1),
    "int_beyond_str_limit": ("dataset: {source: digits}\nseed: 1" + "0" * 5000 + "\n", 2),
    "huge_float": ("dataset: {source: digits}\nsplit: {val: 1.0e+400}\n", 2),
    "huge_range": ("dataset: {source: digits}\naugment:\n  pipeline:\n    - rotate: {degrees: [1" + "0" * 400 + ", 2]}\n", 4),
    "huge_size": ("dataset: {source: digits, image_size: 99999999999}\n", 1),
    "nan": ("dataset: {source: digits}\naugment: {copies: .nan}\n", 2),
    "nan_in_transform": ("dataset: {source: digits}\naugment:\n  pipeline:\n    - brightness: {limit: .nan}\n", 4),
    "inf": ("dataset: {source: digits}\naugment:\n  pipeline: [{rotate: {degrees: .inf}}]\n", 3),
    "negative_inf_seed": ("seed: -.inf\ndataset: {source: digits}\n", 1),
    "mapping_for_pipeline": ("dataset: {source: digits}\naugment: {pipeline: {rotate: 1}}\n", 2),
    "list_for_dataset": ("dataset: [digits]\n", 1),
    "two_key_transform": ("dataset: {source: digits}\naugment:\n  pipeline:\n    - {rotate: {}, hflip: {}}\n", 4),
    "number_transform": ("dataset: {source: digits}\naugment:\n  pipeline:\n    - 17\n", 4),
    "list_key": ("? [a, b]\n: 1\n", 1),
    "null_key": ("~: 1\n", 1),
    "newline_in_key": ('dataset: {source: digits}\n"x\\ny\\r\\u2028": 1\n', 2),
    "python_apply": ("dataset: {source: digits}\nseed: !!python/object/apply:os.getpid []\n", 2),
    "python_new": ("dataset: !!python/object/new:collections.OrderedDict [[[source, digits]]]\n", 1),
    "python_name": ("dataset: {source: digits}\nseed: !!python/name:os.system\n", 2),
    "python_module": ("dataset: {source: digits}\nseed: !!python/module:os\n", 2),
    "python_object": ("dataset: !!python/object:argparse.Namespace {source: digits}\n", 1),
    "set_tag": ("dataset: !!set {source, digits}\n", 1),
    "binary_tag": ("dataset: {source: !!binary ZGlnaXRz}\n", 1),
    "timestamp": ("dataset: {source: 2001-12-14}\n", 1),
    "recursive_alias": ("dataset: &d {source: digits, again: *d}\n", 1),
    "self_list_alias": ("a: &a [*a]\n", 1),
    "billion_laughs": (LAUGHS, 1),
    "deep_nesting": ("dataset: " + "[" * 1000 + "]" * 1000 + "\n", 1),
    "deep_mapping": ("dataset: " + "{a: " * 100 + "1" + "}" * 100 + "\n", 1),
    "bad_merge": ("dataset: {<<: 5, source: digits}\n", 1),
    "bool_for_choice": ("dataset: {source: digits}\noutput: {format: off}\n", 2),  # no off among the formats
    "blank_key": ("' ': null\n", 1),  # found by test_random_documents: the path must not vanish
    # found by test_random_edits once every pipeline entry was built: a number as a nested parameter name
    "number_key_in_a_container": ("dataset: {source: digits}\naugment:\n  pipeline:\n    - one_of:\n"
                                  "        transforms:\n          - elastic: {alpha: 2.0, sigma:,2}\n", 6),
}

ERROR = re.compile(r"^augcli: error: (?P<file>.+?):(?P<line>\d+): \S")


def _write(tmp_path: Path, content) -> Path:
    path = tmp_path / "strategy.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _one_line_error(res, path: Path) -> int:
    """Asserts the error contract: one ``file:line`` line per mistake (a file with several mistakes
    has several, in file order), exit 2; returns the first line's number."""
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    lines = res.stderr.splitlines()
    assert lines, res.stderr
    numbers = []
    for line in lines:
        match = ERROR.match(line)
        assert match and match["file"] == str(path), line
        numbers.append(int(match["line"]))
    assert numbers == sorted(numbers), lines
    return numbers[0]


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_strategy_is_one_line_exit_2_and_writes_nothing(tmp_path, name):
    content, line = MALFORMED[name]
    path = _write(tmp_path, content)
    res = invoke("validate", path)
    assert _one_line_error(res, path) == line, res.stderr
    out = tmp_path / "out"
    res = invoke("run", path, "--out", out)
    assert _one_line_error(res, path) == line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["strategy.yaml"], "run wrote something"


def test_yaml_tags_never_construct_python_objects(tmp_path):
    """The payloads would create a file if any constructor ran; none may (file or --set)."""
    marker = tmp_path / "pwned"
    payloads = [f"!!python/object/apply:pathlib.Path.touch [{marker}]",
                f"!!python/object/new:pathlib.Path.touch [{marker}]",
                f"!!python/object/apply:os.system ['touch {marker}']"]
    for payload in payloads:
        path = _write(tmp_path, f"dataset: {{source: digits}}\nseed: {payload}\n")
        _one_line_error(invoke("validate", path), path)
        ok = _write(tmp_path, "dataset: {source: digits}\n")
        res = invoke("validate", ok, "--set", f"seed={payload}")
        assert res.exit_code == 2 and len(res.stderr.splitlines()) == 1 and "--set seed=" in res.stderr
    assert not marker.exists()


def test_alias_expansion_is_capped_in_size_and_time():
    """A 10**8-element alias bomb is refused after MAX_NODES values, not expanded."""
    start = time.perf_counter()
    with pytest.raises(Exception, match=f"more than {MAX_NODES} values"):
        strategy_from_text(LAUGHS, "bomb.yaml")
    assert time.perf_counter() - start < 5
    assert MAX_NODES <= 1_000_000


def test_rich_strategy_is_valid():
    """The base of the fuzzing below must itself be valid, or every mutation would trivially fail."""
    st_ = strategy_from_text(RICH, "rich.yaml")
    assert len(st_.transforms) == 3 and st_.section("augment")["rules"]


# --------------------------------------------------------------------- wrong types at every level

def _paths(value, prefix=()):
    """Every key path of a nested dict/list, leaves and sections alike."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _replace(data, path, value):
    if not path:
        return value
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


RICH_DATA = yaml.safe_load(RICH)
EVERY_PATH = [p for p in _paths(RICH_DATA) if p]
# Always wrong wherever they land: a mapping with an unknown key, a list of an empty list.
ALWAYS_WRONG = [{"zz_unknown": [1]}, [[]]]
SOMETIMES_WRONG = [None, True, -1, 2**70, 1e308, float("nan"), "x\ny", "", [1, "a"], 0.5]


@pytest.mark.parametrize("wrong", ALWAYS_WRONG + SOMETIMES_WRONG, ids=repr)
def test_wrong_type_at_every_key(tmp_path, wrong):
    """Every key of a rich strategy, at every level, replaced by a wrong-typed value."""
    failures = 0
    for i, path in enumerate(EVERY_PATH):
        data = _replace(copy.deepcopy(RICH_DATA), path, wrong)
        file = tmp_path / f"s{i}.yaml"
        file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        res = invoke("validate", file, "-q")
        if wrong in ALWAYS_WRONG:
            assert res.exit_code == 2, (path, res.output)
        if res.exit_code != 0:
            _one_line_error(res, file)
            failures += 1
    assert failures > 0
    assert len(EVERY_PATH) > 60  # the rich strategy reaches deep: rules, containers, parameters


# --------------------------------------------------------------------- hypothesis

FUZZ = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SCHEMA_WORDS = ["version", "seed", "dataset", "source", "digits", "augment", "copies", "pipeline", "rotate",
                "degrees", "p", "one_of", "transforms", "rules", "classes", "split", "val", "output", "format",
                "clean", "action", "balance", "target", "image_size", "mixup", "alpha"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**80, 2**80), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SCHEMA_WORDS), st.text(max_size=12))
keys = st.one_of(st.sampled_from(SCHEMA_WORDS), st.text(min_size=1, max_size=8))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)), max_leaves=25)


def _check_any(res, path: Path) -> None:
    """Exit 0, or the one-line exit-2 error; nothing else is acceptable."""
    assert res.exit_code in (0, 2), (res.exit_code, res.output)
    if res.exit_code == 2:
        _one_line_error(res, path)


@FUZZ
@given(doc=documents)
def test_random_documents(tmp_path, doc):
    path = tmp_path / "random.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    _check_any(invoke("validate", path, "-q"), path)


@FUZZ
@given(data=st.data())
def test_random_value_spliced_into_the_rich_strategy(tmp_path, data):
    path_ = data.draw(st.sampled_from(EVERY_PATH))
    value = data.draw(documents)
    doc = _replace(copy.deepcopy(RICH_DATA), path_, value)
    path = tmp_path / "spliced.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    _check_any(invoke("validate", path, "-q"), path)


edits = st.lists(st.tuples(st.integers(0, len(RICH)), st.integers(0, 12),
                           st.text(alphabet="\t\n :-[]{}&*!|>'\"#%@`,?\\\x00\x07\x1b\x85\u2028ab1.", max_size=6)),
                 min_size=1, max_size=4)


@FUZZ
@given(changes=edits)
def test_random_edits_of_a_valid_strategy(tmp_path, changes):
    """Characters deleted and YAML-significant ones inserted at random places of a valid file."""
    text = RICH
    for at, cut, insert in changes:
        text = text[:at] + insert + text[at + cut:]
    path = tmp_path / "edited.yaml"
    path.write_text(text, encoding="utf-8")
    _check_any(invoke("validate", path, "-q"), path)


@FUZZ
@given(blob=st.binary(max_size=300))
def test_random_bytes(tmp_path, blob):
    path = tmp_path / "blob.yaml"
    path.write_bytes(blob)
    res = invoke("validate", path, "-q")
    _check_any(res, path)
    assert res.exit_code == 2  # random bytes never make a strategy with a dataset source
