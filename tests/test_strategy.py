"""Strategy validation: every error names file:line and the YAML path; nothing runs on a bad strategy."""

import pytest

from augcli.errors import StrategyError, UsageError
from augcli.config.strategy import load_strategy, parse_override, strategy_from_text

GOOD = """\
version: 1
seed: 3
dataset:
  source: digits
augment:
  copies: 2
  pipeline:
    - hflip
    - brightness: {limit: 0.1, p: 0.5}
"""


def test_defaults_are_filled():
    st = strategy_from_text(GOOD, "s.yaml")
    assert st.seed == 3
    assert st.section("split") == {"val": 0.0, "test": 0.0, "stratify": True}
    assert st.section("output")["format"] == "npz"
    assert [t.name for t in st.transforms] == ["hflip", "brightness"]
    assert st.transforms[1].limit == (-0.1, 0.1)


@pytest.mark.parametrize(
    "bad, line, fragment",
    [
        (GOOD.replace("- hflip", "- hfilp"), 8, "augment.pipeline[0].hfilp: unknown transform 'hfilp' (did you mean 'hflip'?)"),
        (GOOD.replace("limit: 0.1", "limit: ten"), 9, "augment.pipeline[1].brightness.limit: expected a number v in [0, 1]"),
        (GOOD.replace("limit: 0.1", "limit: 7"), 9, "got 7"),
        (GOOD.replace("copies: 2", "copies: two"), 6, "augment.copies: expected an integer in [0, 10000], got 'two'"),
        (GOOD.replace("copies: 2", "copis: 2"), 6, "augment.copis: unknown key 'copis' (did you mean 'copies'?)"),
        (GOOD.replace("seed: 3", "seed: -1"), 2, "seed: expected an integer"),
        (GOOD + "outptu:\n  dir: x\n", 10, "outptu: unknown key 'outptu' (did you mean 'output'?)"),
        (GOOD.replace("p: 0.5", "p: 1.5"), 9, "augment.pipeline[1].brightness.p: expected a number in [0, 1], got 1.5"),
        (GOOD.replace("version: 1", "version: 2"), 1, "version: expected an integer in [1, 1]"),
    ],
)
def test_errors_name_file_line_and_path(bad, line, fragment):
    with pytest.raises(StrategyError) as err:
        strategy_from_text(bad, "configs/x.yaml")
    msg = str(err.value)
    assert msg.startswith(f"configs/x.yaml:{line}: "), msg
    assert fragment in msg
    assert "\n" not in msg


@pytest.mark.parametrize("text, fragment", [
    ("", "the strategy is empty"),
    ("- a\n- b\n", "expected a mapping at the top level"),
    ("a: [1, 2\n", "invalid YAML"),
    ("seed: 1\nseed: 2\n", "duplicate key 'seed'"),
    ("seed: !!python/object/apply:os.system ['true']\n", "unsupported YAML tag"),
    ("seed: !!python/name:os.system\n", "could not determine a constructor"),
])
def test_malformed_yaml_is_one_line(text, fragment):
    with pytest.raises(StrategyError) as err:
        strategy_from_text(text, "x.yaml")
    assert fragment in str(err.value) and str(err.value).startswith("x.yaml:")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("written", ["off", "no", "false", "Off", "'off'"])
def test_off_as_yaml_writes_it_means_off(written):
    """YAML 1.1 reads an unquoted off/no as false: where a choice has 'off', false means it (and
    true means 'on' where that is a choice); elsewhere a boolean is still an error."""
    text = GOOD + f"clean:\n  near_duplicates: {{action: {written}}}\n  exact_duplicates: {written}\n"
    st = strategy_from_text(text, "s.yaml")
    assert st.section("clean")["near_duplicates"]["action"] == "off"
    assert st.section("clean")["exact_duplicates"] == "off"
    with pytest.raises(StrategyError, match=r"s.yaml:11: clean.near_duplicates.action: expected one of .*got True"):
        strategy_from_text(GOOD + "clean:\n  near_duplicates: {action: yes}\n", "s.yaml")
    with pytest.raises(StrategyError, match=r"output.format: expected one of .*got False"):
        strategy_from_text(GOOD + "output: {format: no}\n", "s.yaml")


def test_every_mistake_in_a_file_is_reported_in_file_order(tmp_path):
    """Independent mistakes in several sections and pipeline entries: all of them, one message each,
    in the order of their lines, from one load (and one line each on the command line, exit 2)."""
    text = ("dataset: {source: digits}\naugment:\n  copies: -1\n  pipeline:\n    - hfilp\n"
            "    - affine: {degrees: ten}\noutput: {format: zip}\nsplit: {vall: 0.2}\n")
    with pytest.raises(StrategyError) as err:
        strategy_from_text(text, "x.yaml")
    lines = [m.split(":")[1] for m in err.value.messages]
    assert lines == ["3", "5", "6", "7", "8"], err.value.messages
    assert "augment.copies" in err.value.messages[0] and "did you mean 'hflip'" in err.value.messages[1]
    assert "affine.degrees" in err.value.messages[2] and "output.format" in err.value.messages[3]
    assert "split.vall" in err.value.messages[4]
    assert str(err.value) == err.value.messages[0]  # read as one error, it is the first
    from tests.helpers import invoke, write_strategy

    res = invoke("validate", write_strategy(tmp_path / "s.yaml", text))
    assert res.exit_code == 2 and len(res.stderr.splitlines()) == 5
    assert all(line.startswith(f"augcli: error: {tmp_path / 's.yaml'}:") for line in res.stderr.splitlines())


def test_missing_source_is_reported():
    with pytest.raises(StrategyError, match=r"x.yaml:2: dataset.source: missing required key"):
        strategy_from_text("seed: 1\ndataset: {}\n", "x.yaml")


def test_overrides_are_validated_like_the_file():
    st = strategy_from_text(GOOD, "s.yaml", ["augment.copies=4", "augment.pipeline[1].brightness.limit=[0, 0.2]"])
    assert st.section("augment")["copies"] == 4 and st.transforms[1].limit == (0.0, 0.2)
    with pytest.raises(StrategyError, match=r"^--set augment.copies=-3: augment.copies: expected an integer"):
        strategy_from_text(GOOD, "s.yaml", ["augment.copies=-3"])
    with pytest.raises(UsageError, match="expected PATH=VALUE"):
        strategy_from_text(GOOD, "s.yaml", ["augment.copies"])


def test_parse_override_paths():
    assert parse_override("augment.pipeline[0].rotate.degrees=5") == (("augment", "pipeline", 0, "rotate", "degrees"), 5)
    assert parse_override('dataset.source="a: b.npz"') == (("dataset", "source"), "a: b.npz")


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such strategy file"):
        load_strategy(tmp_path / "nope.yaml")


def test_sha256_tracks_content():
    a = strategy_from_text(GOOD, "a.yaml")
    assert a.sha256 == strategy_from_text(GOOD, "b.yaml").sha256
    assert a.sha256 != strategy_from_text(GOOD.replace("seed: 3", "seed: 4"), "a.yaml").sha256


def test_schema_errors_survive_a_trip_to_a_worker_process():
    """Worker pools send exceptions back pickled; a SchemaError must arrive whole, not as a TypeError."""
    import pickle

    from augcli.errors import SchemaError

    err = pickle.loads(pickle.dumps(SchemaError(("augment", "pipeline", 0), "expected a number")))
    assert isinstance(err, SchemaError) and err.path == ("augment", "pipeline", 0)
    assert err.message == str(err) == "expected a number"
