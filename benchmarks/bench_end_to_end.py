"""End to end: `augcli run` on a folder of JPEG photos against the per-image albumentations + OpenCV
script it replaces, both timed as whole processes.

    PYTHONPATH=. python benchmarks/bench_end_to_end.py --photos 500 --repeats 3
    PYTHONPATH=. python benchmarks/bench_end_to_end.py --jobs imagenet --formats png --workers 1
    PYTHONPATH=. python benchmarks/bench_end_to_end.py --formats tar --tar-image-format jpg

Data: --photos JPEG photos (quality 90, --size square, --classes class folders) cut from
scikit-learn's two sample photographs: a crop of random side and place, a random flip and a
per-channel gain and offset, so that no two photos are alike. They are written once into a cache
folder below --out and reused by later runs with the same --photos, --size and --classes.

Jobs: two pipelines, each side configured to do the same thing (the parameter pairings of
bench_vs_albumentations.py's cases): "imagenet" (random resized crop to 224 with scale 0.08-1,
flip, colour jitter p=0.8, Gaussian blur p=0.2) and "basic" (flip, affine +-15 deg with zoom and
shift, brightness + contrast, Gaussian noise; 256x256 out, for --size 256). Each photo gives
--copies augmented copies; originals are not written. Output formats: png (a PNG tree), tar
(WebDataset-style: the image and a .cls member per sample) and npz (every copy in one array).

- augcli: `python -m augcli run STRATEGY --out OUT --overwrite -q --workers N` on a strategy this
  script writes. Every cleaning check is off (the script cleans nothing); what else augcli does as
  shipped (manifest, report, preview) stays in its time: that is what a user gets.
- the script: the ~30-line script a user would write (written to a .py file, run as its own
  process): list the files, cv2.imread, A.Compose, cv2.imwrite per copy, or cv2.imencode into a tar
  written with tarfile, or np.savez of the stacked copies; --workers 2 maps the files over a
  multiprocessing.Pool(2).

Threads: both sides run as users run them: no thread settings, OpenCV and BLAS with their own
defaults (augcli's worker processes pin OpenCV to one thread themselves; the script's pool does
not). --one-thread sets OMP/OpenBLAS/MKL/OpenCV to one thread in both children instead. The
albumentations update check is switched off (NO_ALBUMENTATIONS_UPDATE=1): it is network time.

Measures: wall time (time.perf_counter around the child process), median over --repeats. Each
repeat runs every worker count of a job, augcli then the script each time, so background load hits
both alike: the ratio (script / augcli: > 1 means augcli is faster) is the median of the ratios of
back-to-back runs, and the speed-up of 2 workers over 1 (printed under the table) the median of
each repeat's. Before every run the file system's pending writes are flushed (os.sync, untimed),
and augcli's bytecode is compiled once at the start, as pip leaves an installed package.
Peak RSS is ru_maxrss over the child's process tree (RUSAGE_CHILDREN in a small wrapper process):
the largest single process (a pool's worker or its parent), not their sum. Output bytes count the data files only (the images,
tar or npz files), not augcli's manifest, report or preview. Start-up: `augcli run` on a 10-photo
folder (basic pipeline, PNG, checks off), median of --repeats.

Every run writes into a fresh folder and nothing is deleted until the last run has been timed
(deleting the previous run's files just before a run would time the file system's aftermath, not
the tool). So the work folder needs room for all the runs' outputs at once: about 20 GB for the
PNG rows of both jobs at 2,000 photos, 3 repeats and 1 and 2 workers.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augcli.rng import mix64

COPIES = 4
JPEG_QUALITY = 90
CHECKS_OFF = {"exact_duplicates": "off", **{name: {"action": "off"} for name in (
    "blank", "noise", "near_duplicates", "outliers", "label_errors", "leakage")}}

# name -> (augcli pipeline entries, the albumentations transforms of the script, as source text)
PIPELINES = {
    "imagenet": (
        [{"random_resized_crop": {"size": 224, "scale": [0.08, 1.0], "p": 1}}, {"hflip": {"p": 0.5}},
         {"color_jitter": {"p": 0.8}}, {"gaussian_blur": {"sigma": [0.5, 2.0], "p": 0.2}}],
        """A.RandomResizedCrop(size=(224, 224), scale=(0.08, 1.0), p=1),
    A.HorizontalFlip(p=0.5),
    A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05, p=0.8),
    A.GaussianBlur(sigma_limit=(0.5, 2.0), blur_limit=0, p=0.2),""",
    ),
    "basic": (
        [{"hflip": {"p": 0.5}}, {"affine": {"degrees": 15, "scale": 0.1, "translate": 0.1, "shear": 0, "p": 1}},
         {"brightness": {"limit": 0.2, "p": 1}}, {"contrast": {"factor": 0.2, "p": 1}},
         {"gaussian_noise": {"std": [0.01, 0.05], "p": 1}}],
        """A.HorizontalFlip(p=0.5),
    A.Affine(rotate=(-15, 15), scale=(0.9, 1.1), translate_percent=(-0.1, 0.1), shear=0,
             interpolation=cv2.INTER_LINEAR, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1),
    A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=1),
    A.GaussNoise(std_range=(0.01, 0.05), p=1),""",
    ),
}

# The user's script. {transforms} and {copies} are filled in; the rest comes from argv.
SCRIPT = '''\
"""Augment a folder of class sub-folders with albumentations: {copies} copies per photo."""
import sys
import tarfile
import io
from multiprocessing import Pool
from pathlib import Path

import albumentations as A
import cv2
import numpy as np

SRC, OUT, FORMAT, WORKERS = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
MEMBER = sys.argv[5]  # tar member image format: png, jpg or webp
COPIES = {copies}
augment = A.Compose([
    {transforms}
])


PARAMS = {{"jpg": [cv2.IMWRITE_JPEG_QUALITY, 90], "webp": [cv2.IMWRITE_WEBP_QUALITY, 90]}}.get(MEMBER, [])


def encode(image):
    return cv2.imencode("." + MEMBER, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), PARAMS)[1]


def process(path):
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    copies = [augment(image=image)["image"] for _ in range(COPIES)]
    if FORMAT == "png":
        for k, copy in enumerate(copies):
            cv2.imwrite(str(OUT / path.parent.name / f"{{path.stem}}_{{k}}.png"), cv2.cvtColor(copy, cv2.COLOR_RGB2BGR))
        return None
    return [encode(c).tobytes() for c in copies] if FORMAT == "tar" else np.stack(copies)


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    classes = sorted(d.name for d in SRC.iterdir() if d.is_dir())
    files = [p for c in classes for p in sorted((SRC / c).iterdir())]
    for c in classes:
        (OUT / c).mkdir(parents=True, exist_ok=True)
    pool = Pool(WORKERS) if WORKERS > 1 else None
    results = pool.imap(process, files, chunksize=8) if pool else map(process, files)
    if FORMAT == "png":
        for _ in results:
            pass
    elif FORMAT == "tar":
        with tarfile.open(OUT / "train.tar", "w") as tar:
            for path, blobs in zip(files, results):
                for k, blob in enumerate(blobs):
                    key = f"{{path.parent.name}}_{{path.stem}}_{{k}}"
                    add(tar, f"{{key}}.{{MEMBER}}", blob)
                    add(tar, f"{{key}}.cls", str(classes.index(path.parent.name)).encode())
    else:
        images = None
        for i, stack in enumerate(results):
            if images is None:
                images = np.empty((len(files) * COPIES, *stack.shape[1:]), np.uint8)
            images[i * COPIES:(i + 1) * COPIES] = stack
        labels = np.repeat([classes.index(p.parent.name) for p in files], COPIES)
        np.savez(OUT / "train.npz", images=images, labels=labels)
    if pool:
        pool.close()
        pool.join()
'''


# --- the photo folder ---------------------------------------------------------------------------
def _uniforms(count: int, salt: int) -> np.ndarray:
    """``count`` uniform floats in [0, 1), reproducible (counter hashing, as augcli.rng does)."""
    counters = np.arange(count, dtype=np.uint64) + np.uint64(salt)
    return (mix64(counters) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _photo(source: np.ndarray, u: np.ndarray, size: int) -> np.ndarray:
    """One photo from a sample photograph and 9 uniforms: crop, resize, flip, per-channel gain/offset."""
    import cv2

    h, w = source.shape[:2]
    side = int(min(h, w) * (0.45 + 0.55 * u[0]))
    top, left = int((h - side) * u[1]), int((w - side) * u[2])
    photo = cv2.resize(source[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)
    if u[3] < 0.5:
        photo = photo[:, ::-1]
    gain, offset = 0.8 + 0.4 * u[4:7], 40.0 * u[6:9] - 20.0
    return np.clip(photo * gain + offset, 0, 255).astype(np.uint8)


def photo_folder(root: Path, photos: int, size: int, classes: int) -> Path:
    """The cached folder of ``photos`` JPEGs (``classes`` class folders); made once, then reused."""
    import cv2
    from sklearn.datasets import load_sample_images

    folder = root / f"photos-{photos}x{size}-{classes}c"
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)  # a half-written folder from an interrupted run
    sources = load_sample_images().images
    u = _uniforms(photos * 10, salt=size * 1_000_003).reshape(photos, 10)
    for i in range(photos):
        path = folder / f"class{i % classes}" / f"photo{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = _photo(sources[int(u[i, 9] < 0.5)], u[i], size)
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    (folder / ".complete").write_text("")
    return folder


# --- the two sides ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    pipeline: str
    fmt: str
    workers: int


def strategy_text(photos: Path, job: Job, tar_image_format: str | None) -> str:
    output = {"format": job.fmt}
    if job.fmt == "tar" and tar_image_format:
        output |= {"image_format": tar_image_format, "quality": JPEG_QUALITY}
    strategy = {"dataset": {"source": str(photos)}, "clean": CHECKS_OFF,
                "augment": {"copies": COPIES, "keep_originals": False, "pipeline": PIPELINES[job.pipeline][0]},
                "output": output}
    return json.dumps(strategy, indent=1)  # JSON is YAML; no quoting of "off" to get wrong


def script_text(job: Job) -> str:
    return SCRIPT.format(transforms=PIPELINES[job.pipeline][1], copies=COPIES)


@dataclass
class Run:
    seconds: float
    rss_mib: float
    code: int


# Runs the command given after the result file and writes "<peak RSS KiB> <seconds>" there. A child
# forked straight from this benchmark would start its peak RSS at the benchmark's own size (Linux
# carries it over fork and exec); this small interpreter forks the command from a fresh image.
WRAPPER = """\
import resource, subprocess, sys, time
t0 = time.perf_counter()
code = subprocess.call(sys.argv[2:])
seconds = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    f.write(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss} {seconds}")
sys.exit(code)
"""


def run_child(args: list[str], env: dict, log: Path) -> Run:
    """Run ``args`` to completion: wall seconds, peak RSS (MiB) and exit code."""
    result = log.with_suffix(".usage")
    with open(log, "wb") as out:
        code = subprocess.call([sys.executable, "-c", WRAPPER, str(result), *args], env=env, stdout=out,
                               stderr=subprocess.STDOUT)
    if code != 0:
        return Run(float("nan"), float("nan"), code)
    kib, seconds = result.read_text().split()
    return Run(float(seconds), int(kib) / 1024, code)


def data_bytes(out: Path, fmt: str) -> int:
    """Bytes of the data files below ``out``: the images, tar or npz files (not preview.png)."""
    suffix = {"png": ".png", "tar": ".tar", "npz": ".npz"}[fmt]
    return sum(p.stat().st_size for p in out.rglob(f"*{suffix}") if p.is_file() and p.name != "preview.png")


class Bench:
    def __init__(self, args):
        self.args = args
        self.root = Path(args.out).resolve()
        self.env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
        if args.one_thread:
            self.env |= {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                          "OPENCV_FOR_THREADS_NUM")}
        for sub in ("strategies", "scripts", "logs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.runs = self.root / f"runs-{os.getpid()}"  # removed by ``finish``; never reused
        # augcli from its bytecode, as albumentations runs from the bytecode pip wrote at install (an
        # editable install or a checkout has none until first run, or ever with PYTHONDONTWRITEBYTECODE)
        import augcli

        compileall.compile_dir(Path(augcli.__file__).parent, quiet=1)

    def finish(self) -> None:
        """Delete every run's output (and those of interrupted earlier benchmarks), after all timing."""
        for old in self.root.glob("runs*"):
            shutil.rmtree(old, ignore_errors=True)

    def augcli_command(self, photos: Path, job: Job, out: Path) -> list[str]:
        name = f"{job.pipeline}-{job.fmt}-{photos.name}"
        strategy = self.root / "strategies" / f"{name}.yaml"
        strategy.write_text(strategy_text(photos, job, self.args.tar_image_format))
        return [sys.executable, "-m", "augcli", "run", str(strategy), "--out", str(out), "--overwrite", "-q",
                "--workers", str(job.workers)]

    def script_command(self, photos: Path, job: Job, out: Path) -> list[str]:
        script = self.root / "scripts" / f"albumentations_{job.pipeline}.py"
        script.write_text(script_text(job))
        member = self.args.tar_image_format or "png"  # what augcli's tar holds
        return [sys.executable, str(script), str(photos), str(out), job.fmt, str(job.workers), member]

    def timed(self, side: str, command: list[str], out: Path) -> Run:
        # A fresh folder per run, and nothing deleted until the benchmark ends: deleting the last run's
        # thousands of files right before a timed run would time their aftermath (on ext4 without a
        # journal, creating files passes over every inode freed in the last minute).
        # The earlier runs' written pages go to disk first, untimed: otherwise the kernel writes them
        # back while this run works, and each run pays for the last one's output.
        os.sync()
        out.mkdir(parents=True)
        log = self.root / "logs" / f"{out.name}.log"
        run = run_child(command, self.env, log)
        if run.code != 0:
            sys.exit(f"{side} failed (exit {run.code}); see {log}:\n" + log.read_text(errors="replace")[-2000:])
        return run

    def compare(self, photos: Path, pipeline: str, fmt: str) -> tuple[dict[int, dict], dict]:
        """(rows by worker count, the runs behind them) of one job and format. Each repeat runs every worker count, each
        as augcli then the script, so the ratios between sides and between worker counts come from
        runs a few seconds apart: the median of those per-repeat ratios."""
        jobs = [Job(pipeline, fmt, w) for w in self.args.workers]
        runs = {job.workers: {"augcli": [], "script": []} for job in jobs}
        outs = {}
        for i in range(self.args.repeats):
            for job in jobs:
                tag = f"{job.pipeline}-{job.fmt}-w{job.workers}"
                outs[job.workers] = {side: self.runs / f"{side}-{tag}-{i}" for side in ("augcli", "script")}
                commands = {"augcli": self.augcli_command(photos, job, outs[job.workers]["augcli"]),
                            "script": self.script_command(photos, job, outs[job.workers]["script"])}
                for side in ("augcli", "script"):
                    runs[job.workers][side].append(self.timed(side, commands[side], outs[job.workers][side]))
        return {w: self._row(fmt, rs, outs[w]) for w, rs in runs.items()}, runs

    def _row(self, fmt: str, runs: dict[str, list[Run]], outs: dict[str, Path]) -> dict:
        expected = self.args.photos * COPIES
        if fmt == "png":
            for side, out in outs.items():
                made = sum(1 for p in out.rglob("*.png") if p.name != "preview.png")
                if made != expected:
                    sys.exit(f"{side} wrote {made} PNGs, expected {expected}")
        row = {side: {"seconds": statistics.median(r.seconds for r in rs), "rss": max(r.rss_mib for r in rs),
                      "bytes": data_bytes(outs[side], fmt)} for side, rs in runs.items()}
        row["ratio"] = statistics.median(s.seconds / a.seconds for a, s in zip(runs["augcli"], runs["script"]))
        row["images"] = expected
        return row

    def startup(self, photos: Path) -> float:
        job = Job("basic", "png", 1)
        outs = [self.runs / f"augcli-startup-{i}" for i in range(self.args.repeats)]
        return statistics.median(self.timed("augcli", self.augcli_command(photos, job, out), out).seconds
                                 for out in outs)


def _format_label(fmt: str, tar_image_format: str | None) -> str:
    return f"tar ({tar_image_format or 'png'})" if fmt == "tar" else fmt


def table_row(job: Job, row: dict, tar_image_format: str | None) -> str:
    a, s = row["augcli"], row["script"]
    rate = lambda side: row["images"] / side["seconds"]  # noqa: E731
    return (f"| {job.pipeline} | {_format_label(job.fmt, tar_image_format)} | {job.workers} | {a['seconds']:.1f} | "
            f"{s['seconds']:.1f} | {rate(a):,.0f} | {rate(s):,.0f} | {row['ratio']:.2f}x | {a['rss']:,.0f} | "
            f"{s['rss']:,.0f} | {a['bytes'] / 1e6:,.1f} | {s['bytes'] / 1e6:,.1f} |")


def scaling_lines(pipeline: str, fmt: str, runs: dict[int, dict[str, list[Run]]]) -> list[str]:
    """For each worker count above the smallest: its speed-up over the smallest, both sides."""
    base = min(runs)
    lines = []
    for workers in sorted(w for w in runs if w != base):
        each = {side: [b.seconds / r.seconds for b, r in zip(runs[base][side], runs[workers][side])]
                for side in ("augcli", "script")}
        shown = {side: f"{statistics.median(r):.2f}x ({', '.join(f'{x:.2f}' for x in r)})" for side, r in each.items()}
        lines.append(f"- {pipeline}, {fmt}: {workers} workers vs {base}: augcli {shown['augcli']}, "
                     f"script {shown['script']} (median, then each repeat's)")
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/out/bench-e2e", help="work folder: photo cache, strategies, outputs")
    parser.add_argument("--photos", type=int, default=2000, help="JPEG photos in the input folder")
    parser.add_argument("--size", type=int, default=256, help="side of the square photos (pixels)")
    parser.add_argument("--classes", type=int, default=4, help="class folders")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side and job (median reported)")
    parser.add_argument("--jobs", nargs="+", choices=list(PIPELINES), default=list(PIPELINES), help="pipelines")
    parser.add_argument("--formats", nargs="+", choices=("png", "tar", "npz"), default=["png", "tar", "npz"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2], help="worker counts")
    parser.add_argument("--tar-image-format", choices=("png", "jpg", "webp"),
                        help="set output.image_format (and output.quality 90) for augcli's tar and use it in "
                             "the script's tar; unset: augcli's tar as it is, the script writing PNG members")
    parser.add_argument("--one-thread", action="store_true", help="one thread for OpenCV/BLAS/OpenMP in both children")
    parser.add_argument("--no-startup", action="store_true", help="skip the 10-photo start-up timing")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    bench = Bench(args)
    photos = photo_folder(bench.root, args.photos, args.size, args.classes)
    import albumentations as A
    import cv2

    print(f"# {args.photos} JPEG photos {args.size}x{args.size}, {args.classes} classes, {COPIES} copies each; "
          f"albumentations {A.__version__}, opencv {cv2.__version__}, numpy {np.__version__}, "
          f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
          f"threads: {'one' if args.one_thread else 'library defaults'}; median of {args.repeats} alternating runs; "
          f"ratio = script s / augcli s (> 1: augcli faster), median of back-to-back ratios")
    print("| job | format | workers | augcli s | script s | augcli img/s | script img/s | ratio | "
          "augcli peak RSS MiB | script peak RSS MiB | augcli MB | script MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    scaling = []
    try:
        for pipeline in args.jobs:
            for fmt in args.formats:
                rows, runs = bench.compare(photos, pipeline, fmt)
                for workers in args.workers:
                    print(table_row(Job(pipeline, fmt, workers), rows[workers], args.tar_image_format), flush=True)
                scaling += scaling_lines(pipeline, _format_label(fmt, args.tar_image_format), runs)
        if scaling:
            print("\nwhole-run speed-up of more workers (median of per-repeat ratios, same repeat's runs):")
            print("\n".join(scaling))
        if not args.no_startup:
            small = photo_folder(bench.root, 10, args.size, min(args.classes, 10))
            print(f"\nstart-up: augcli run on 10 photos (basic, png, checks off): {bench.startup(small):.2f} s "
                  f"(median of {args.repeats})")
    finally:
        bench.finish()


if __name__ == "__main__":
    main()
