"""The user's input is never deleted, modified or mixed: an output over, around or inside an input is
refused by every command that writes; ``--overwrite`` replaces only what augcli made; the lock file
never writes through a planted link; long output names work."""

import os
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import fingerprint, invoke, square, write_strategy, write_tree


def _everything(folder: Path) -> dict:
    """sha256 of every file below ``folder``, report files included: the input must not change at all."""
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path, photo, monkeypatch):
    """A user's project folder: photos/<class>/*.png (2 classes x 8) and the strategy beside them."""
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path / "photos", {f"{name}/{i}.png": square(photo, 20 * i + 60 * c, 25 * i, 48)
                                     for c, name in enumerate(["cat", "dog"]) for i in range(8)})
    write_strategy(tmp_path / "s.yaml", "version: 1\nseed: 0\ndataset: {source: photos, image_size: [16, 16]}\n"
                                        "augment: {copies: 1, pipeline: [hflip]}\noutput: {format: png}\n")
    return tmp_path


WRITERS = {
    "run": lambda out: ["run", "s.yaml", "--out", out, "--overwrite", "-q"],
    "inspect": lambda out: ["inspect", "photos", "--out", out, "--overwrite", "-q"],
    "inspect-strategy": lambda out: ["inspect", "s.yaml", "--out", out, "--overwrite", "-q"],
    "evaluate": lambda out: ["evaluate", "s.yaml", "-o", out, "--overwrite", "-q", "--repeats", "2"],
    "search": lambda out: ["search", "s.yaml", "-o", out, "--overwrite", "-q", "--repeats", "1"],
    "search-tuned": lambda out: ["search", "s.yaml", "-o", "rep", "--tuned", out, "--overwrite", "-q", "--repeats", "1"],
    "preview": lambda out: ["preview", "s.yaml", "-o", out, "--overwrite", "-q"],
    "preview-file": lambda out: ["preview", "s.yaml", "--output", out, "-q"],  # deprecated; one release more
}
PLACES = {"the input": "photos", "a parent of the input": ".", "inside the input": "photos/cat/out",
          "the input through ..": "photos/cat/../../photos", "the strategy file": "s.yaml"}


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("command", WRITERS)
def test_no_command_writes_over_around_or_into_its_input(project, command, place):
    before = _everything(project)
    res = invoke(*WRITERS[command](PLACES[place]))
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("augcli: error: "), res.output
    # our refusal names the input; Click's path types refuse a file given for a folder (or back) first
    assert "input" in lines[0] or "is a file" in lines[0] or "is a directory" in lines[0], res.output
    assert _everything(project) == before  # not one byte of the input (or anything beside it) changed
    assert not [p for p in project.iterdir() if p.name.startswith(".")]  # not even a lock file


def test_a_symlink_to_the_input_is_the_input(project):
    (project / "link").symlink_to(project / "photos")
    before = _everything(project / "photos")
    res = invoke("run", "s.yaml", "--out", "link", "--overwrite")
    assert res.exit_code == 2 and "the input photos" in res.output
    assert _everything(project / "photos") == before


def test_the_current_folder_is_never_an_output(project):
    (project / "elsewhere").mkdir()
    os.chdir(project / "elsewhere")  # the strategy is not below it: only the cwd rule refuses
    res = invoke("run", "../s.yaml", "--out", ".", "--overwrite", "--set", "dataset.source=../photos")
    assert res.exit_code == 2 and "current folder" in res.output, res.output
    assert sorted(os.listdir(".")) == []  # no '..lock', no partial output


def test_overwrite_replaces_only_what_augcli_made(project):
    foreign = project / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    res = invoke("run", "s.yaml", "--out", "mine", "--overwrite")
    assert res.exit_code == 2 and "not made by augcli" in res.output
    assert (foreign / "notes.txt").read_text() == "keep me" and len(list(foreign.iterdir())) == 1

    (project / "empty").mkdir()  # an empty folder holds nothing to lose
    assert invoke("run", "s.yaml", "--out", "empty", "--overwrite", "-q").exit_code == 0
    first = fingerprint(project / "empty")
    assert ".augcli-output" in first
    assert invoke("run", "s.yaml", "--out", "empty", "--overwrite", "-q").exit_code == 0  # its own output
    assert fingerprint(project / "empty") == first


def test_every_command_marks_its_output(project):
    for command, out in (("run", "o1"), ("inspect", "o2"), ("preview", "o3")):
        assert invoke(*WRITERS[command](out)).exit_code == 0
        assert (project / out / ".augcli-output").is_file()


def test_preview_replaces_its_own_output_and_nothing_else(project):
    assert invoke("preview", "s.yaml", "-o", "p", "-q").exit_code == 0
    assert invoke("preview", "s.yaml", "-o", "p", "--overwrite", "-q").exit_code == 0  # a rerun replaces its own
    (project / "holiday").mkdir()
    Image.new("RGB", (4, 4)).save(project / "holiday" / "preview.png")
    before = (project / "holiday" / "preview.png").read_bytes()
    res = invoke("preview", "s.yaml", "-o", "holiday", "--overwrite", "-q")
    assert res.exit_code == 2 and "not made by augcli" in res.output
    assert (project / "holiday" / "preview.png").read_bytes() == before


def test_a_planted_lock_symlink_is_refused_and_its_target_untouched(project):
    victim = project / "precious.txt"
    victim.write_text("do not truncate")
    (project / ".out.lock").symlink_to(victim)
    res = invoke("run", "s.yaml", "--out", "out")
    assert res.exit_code == 2 and "symbolic link" in res.output
    assert victim.read_text() == "do not truncate" and not (project / "out").exists()


@pytest.mark.parametrize("length", [200, 247, 250, 255])
def test_long_output_names_work(project, length):
    name = "o" * length
    res = invoke("run", "s.yaml", "--out", name, "-q")
    assert res.exit_code == 0, res.output
    assert (project / name / "manifest.jsonl").is_file()
    assert invoke("run", "s.yaml", "--out", name, "-q", "--overwrite").exit_code == 0
    hidden = [p.name for p in project.iterdir() if p.name.startswith(".")]
    assert len(hidden) == 1 and hidden[0].endswith(".lock"), hidden  # nothing partial, old or journalled left
    assert len(os.fsencode(hidden[0])) <= 255
