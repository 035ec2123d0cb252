"""No serial stage that grows with the input: the folder scan runs in the run's workers (or as Dask
tasks) with the serial scan's exact results, and a PNG tree's splits are cut into shards that run in
parallel without changing a byte of the output."""

import json
from collections import Counter

import numpy as np
import pytest
from sklearn.datasets import load_sample_image

from augcli.datasets import source as source_module
from augcli.engine import runner
from augcli.engine.executors import Engine
from augcli.errors import DataError
from tests.helpers import broken_file, fingerprint, invoke, jpeg_bytes, square, write_strategy, write_tree

STRATEGY = """\
seed: 5
dataset: {{source: "{root}"}}
split: {{val: 0.2}}
augment:
  copies: {copies}
  pipeline:
    - hflip
    - affine: {{degrees: 15, translate: 0.1}}
{extra}
"""


def photo_folder(root, n: int = 60, broken: bool = True):
    """``n`` small photo crops in 3 classes, of two sizes (the first readable one decides the output's),
    with an unreadable first file, a JPEG named .png and a truncated file among them."""
    photo = load_sample_image("china.jpg")
    files = {}
    for i in range(n):
        side = 28 if i % 4 == 3 else 24
        files[f"c{i % 3}/{i:03d}.jpg"] = jpeg_bytes(square(photo, (i * 7) % 300, (i * 11) % 500, side), quality=90)
    if broken:
        files["c0/000.jpg"] = broken_file("undecodable")  # the first file: the size comes from the next one
        files["c1/050.png"] = jpeg_bytes(square(photo, 5, 5, 24))
        files["c2/020.png"] = broken_file("truncated", square(photo, 9, 9, 24))
    return write_tree(root, files)


def scan(root, mapper=source_module.serial_map, strict=False):
    return source_module.scan_folder(root, None, None, strict, 10**8, mapper=mapper)


def recording(engine: Engine, calls: list):
    def mapper(function, tasks, job):
        calls.append(len(tasks))
        return engine.map(function, tasks, job, "scan")
    return mapper


def test_scan_in_worker_processes_matches_the_serial_scan(tmp_path, monkeypatch):
    monkeypatch.setattr(source_module, "SCAN_CHUNK", 7)  # many chunks, some with skips in them
    root = photo_folder(tmp_path / "imgs")
    serial_source, serial_view, serial_keys = scan(root)
    calls = []
    with Engine("local", workers=2) as engine:
        source, view, keys = scan(root, recording(engine, calls))
    assert calls == [9]  # 61 files in chunks of 7, sent to the pool
    assert source.files == serial_source.files and source.size == serial_source.size == (28, 28)
    assert source.fingerprint() == serial_source.fingerprint()
    assert np.array_equal(keys, serial_keys) and np.array_equal(view.images, serial_view.images)
    assert view.skipped == serial_view.skipped and len(view.skipped) == 2
    assert view.warnings == serial_view.warnings
    others = [w for w in view.warnings if w.reason != "resized"]  # the 24x24 crops stretched to 28x28
    resized = {w.detail for w in view.warnings if w.reason == "resized"}
    assert len(others) == 1 and resized == {"24x24 -> 28x28 (stretch)"} and len(view.warnings) > 40


def test_strict_scan_in_workers_fails_on_the_first_bad_file(tmp_path, monkeypatch):
    monkeypatch.setattr(source_module, "SCAN_CHUNK", 5)
    root = photo_folder(tmp_path / "imgs", broken=False)
    (root / "c0" / "039.jpg").write_bytes(broken_file("empty"))
    (root / "c2" / "041.jpg").write_bytes(broken_file("undecodable"))  # later in file order, maybe scanned first
    with pytest.raises(DataError) as serial:
        scan(root, strict=True)
    with Engine("local", workers=2) as engine, pytest.raises(DataError) as parallel:
        scan(root, recording(engine, []), strict=True)
    assert str(parallel.value) == str(serial.value) and "039.jpg" in str(serial.value)


def run(tmp_path, name, strategy, *extra):
    out = tmp_path / name
    res = invoke("run", strategy, "--out", out, "-q", *extra)
    assert res.exit_code == 0, res.output
    return fingerprint(out)


def spy_shards(monkeypatch) -> list:
    """Records the shard names each run executes."""
    seen, real = [], runner.execute

    def execute(specs, *args, **kwargs):
        seen.append([s.name for s in specs])
        return real(specs, *args, **kwargs)

    monkeypatch.setattr(runner, "execute", execute)
    return seen


@pytest.mark.parametrize("extra, options", [
    ("output: {format: png}", []),                  # one shard per split before
    ("output: {format: png, shuffle: true}", []),   # one shuffled shard per split
    ("output: {format: png}", ["--shard-size", 50]),  # shuffled shards of 50 (as a large split gets)
])
def test_png_tree_shards_change_no_byte(tmp_path, monkeypatch, extra, options):
    root = photo_folder(tmp_path / "imgs", n=120, broken=False)
    strategy = write_strategy(tmp_path / "s.yaml", STRATEGY.format(root=root, copies=5, extra=extra))
    shards = spy_shards(monkeypatch)
    with monkeypatch.context() as before:  # the shards run as they are listed
        before.setattr(runner, "_invisible_shards", lambda *a: False)
        base = run(tmp_path, "before", strategy, *options)
    assert run(tmp_path, "w1", strategy, *options) == base
    assert shards[-1][:2] == ["train-00000", "train-00001"] and shards[-1][-1] == "val-00000"  # 256 outputs a shard
    assert run(tmp_path, "w2", strategy, "--workers", 2, "--batch-size", 13, *options) == base
    manifest = [json.loads(line) for line in (tmp_path / "w2" / "manifest.jsonl").read_text().splitlines()]
    in_source_order = manifest == sorted(manifest, key=lambda r: (r["split"] != "train", r["source"], r["copy"]))
    assert in_source_order == (options == [] and "shuffle" not in extra)
    assert "train/metadata.jsonl" in base


@pytest.mark.parametrize("extra", ["    - mixup: {p: 0.5}\noutput: {format: png}", "output: {format: npz}",
                                   "output: {format: tar}"])
def test_only_an_unmixed_png_tree_runs_in_other_shards(tmp_path, monkeypatch, extra):
    """Mixing draws partners from the shard; npz and tar name their files after the shards."""
    root = photo_folder(tmp_path / "imgs", n=120, broken=False)
    strategy = write_strategy(tmp_path / "s.yaml", STRATEGY.format(root=root, copies=5, extra=extra))
    shards = spy_shards(monkeypatch)
    run(tmp_path, "out", strategy)
    assert shards[-1] == ["train", "val"]


def count_decodes(monkeypatch, root) -> Counter:
    """How many times this process decodes each file of ``root`` (by its path under ``root``)."""
    decoded, real = Counter(), source_module.decode_files

    def decode_files(files, *args, **kwargs):
        decoded.update(str(f[1].relative_to(root)) for f in files)
        return real(files, *args, **kwargs)

    monkeypatch.setattr(source_module, "decode_files", decode_files)
    return decoded


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("cached", [True, False], ids=["source_cache", "decoded_again"])
def test_the_shard_pass_decodes_each_source_once(tmp_path, monkeypatch, shuffle, cached):
    """Every file is decoded by the scan; the shard pass reads the source cache, or without it
    decodes each written source once more (the PNG tree's shards run in source order)."""
    if not cached:
        monkeypatch.setattr(source_module, "_new_cache", lambda *args: None)
    root = photo_folder(tmp_path / "imgs", n=120, broken=False)
    strategy = write_strategy(tmp_path / "s.yaml", STRATEGY.format(
        root=root, copies=5, extra=f"output: {{format: png, shuffle: {str(shuffle).lower()}}}\nreport: {{preview: false}}"))
    decoded = count_decodes(monkeypatch, root)
    run(tmp_path, "out", strategy)
    manifest = (tmp_path / "out" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    written = {json.loads(line)["source"] for line in manifest}
    assert 60 < len(written) < 120  # cleaning and leakage removal dropped some: those are read once
    # every file in the scan, the written ones in the shard pass too; the first also for the output size
    again = (lambda f: f in written) if not cached else (lambda f: False)
    assert decoded == Counter({f: 1 + again(f) + (f == "c0/000.jpg") for f in decoded}) and len(decoded) == 120


@pytest.mark.parametrize("fmt", ["tar", "npz"])
def test_shuffled_shards_read_each_source_from_the_cache(tmp_path, monkeypatch, fmt):
    """Shuffled shards (tar, npz) spread a source's copies over several shards: they read the source
    cache, so every file is decoded once per run, and the bytes are those of decoding again."""
    root = photo_folder(tmp_path / "imgs", n=90, broken=False)
    strategy = write_strategy(tmp_path / "s.yaml", STRATEGY.format(
        root=root, copies=4, extra=f"output: {{format: {fmt}}}\nreport: {{preview: false}}"))
    decoded = count_decodes(monkeypatch, root)
    cached = run(tmp_path, "cached", strategy, "--shard-size", 50)  # in this process: decodes are counted
    assert decoded == Counter({f: 1 + (f == "c0/000.jpg") for f in decoded}) and len(decoded) == 90
    decoded.clear()
    monkeypatch.setattr(source_module, "_new_cache", lambda *args: None)
    assert run(tmp_path, "decoded", strategy, "--shard-size", 50) == cached
    assert sum(decoded.values()) > 2 * 90  # without it, a source is decoded once per shard its copies reach
    monkeypatch.undo()
    assert run(tmp_path, "cached_2_workers", strategy, "--shard-size", 50, "--workers", 2) == cached


def test_the_source_cache_is_gone_when_the_run_ends(tmp_path, monkeypatch):
    """The cache lives in the temporary folder only while the run does: after success and after a
    failure (here a file that changed during the run) nothing of it is left."""
    import tempfile

    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    made, real_new = [], source_module._new_cache
    monkeypatch.setattr(source_module, "_new_cache", lambda *args: made.append(real_new(*args)) or made[-1])
    root = photo_folder(tmp_path / "imgs", n=30, broken=False)
    strategy = write_strategy(tmp_path / "s.yaml", STRATEGY.format(root=root, copies=2, extra="output: {format: npz}"))
    run(tmp_path, "ok", strategy)
    assert made[-1] is not None and str(scratch) in made[-1]["path"] and list(scratch.iterdir()) == []
    real_scan = source_module.scan_folder

    def scan_then_touch(*args, **kwargs):
        result = real_scan(*args, **kwargs)
        (root / "c1" / "004.jpg").write_bytes((root / "c1" / "004.jpg").read_bytes() + b"\0")
        return result

    monkeypatch.setattr(source_module, "scan_folder", scan_then_touch)
    res = invoke("run", strategy, "--out", tmp_path / "failed", "-q")
    assert res.exit_code == 1 and "c1/004.jpg: changed during the run" in res.stderr
    assert list(scratch.iterdir()) == [] and not (tmp_path / "failed").exists()


def test_dask_runs_the_scan_and_the_shards_as_cluster_tasks(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    root = photo_folder(tmp_path / "imgs")
    strategy = write_strategy(tmp_path / "s.yaml", STRATEGY.format(root=root, copies=2, extra="output: {format: png}"))
    base = run(tmp_path, "local", strategy)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        assert run(tmp_path, "dask", strategy, "--engine", "dask", "--scheduler", cluster.scheduler_address) == base
        prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert {"augcli-scan", "augcli-shard", "augcli-preview"} <= set(prefixes)


def test_one_dask_client_serves_every_pass_of_a_run(tmp_path, monkeypatch):
    """The scan, the shards and the preview share one client: a pass that read all its results does
    not close it (closing meant a reconnect, or a new local cluster, for the next pass)."""
    pytest.importorskip("dask.distributed")
    root = photo_folder(tmp_path / "imgs", n=30, broken=False)
    strategy = write_strategy(tmp_path / "s.yaml", STRATEGY.format(root=root, copies=2, extra="output: {format: png}"))
    connects, real = [], Engine._connect

    def connect(self):
        if self._client is None:
            connects.append(self)
        return real(self)

    monkeypatch.setattr(Engine, "_connect", connect)
    assert run(tmp_path, "dask", strategy, "--engine", "dask", "--workers", 2) == run(tmp_path, "local", strategy)
    assert len(connects) == 1
