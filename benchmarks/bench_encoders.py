"""Image encoders on photo content: ms/image, bytes/image and both as ratios to cv2.imwrite's PNG.

    .venv/bin/python benchmarks/bench_encoders.py                  # 64 crops, 5 rounds, everything
    .venv/bin/python benchmarks/bench_encoders.py --only png --pipeline basic --gray --repeats 7

Data: 224x224 crops of scikit-learn's two sample photos, augmented by augcli itself (--pipeline
imagenet: random resized crop, flip, colour jitter p=0.8, blur p=0.2; basic: flip, affine,
brightness, contrast, Gaussian noise), i.e. what ``augcli run`` hands to the encoder; --gray encodes
their luma. One thread: the shard jobs call the encoder one image at a time and are themselves the
parallel unit. Each round times every candidate right after a pass of the baseline,
``cv2.imencode(".png", img)`` with OpenCV's defaults (what ``cv2.imwrite`` writes, the PNG issue 15
compares with); "time ratio" is the median over rounds of candidate / baseline, "size ratio" the
mean bytes over the baseline's. Every encoder gets RGB and swaps to BGR itself where it needs to.

Optional codecs (imagecodecs, fpng) are measured when they import; augcli does not depend on them.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy loads its BLAS

import argparse  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.datasets import load_sample_image  # noqa: E402

from augcli.io.encoders import encode_image  # noqa: E402
from augcli.pipeline import Pipeline  # noqa: E402

PIPELINES = {
    "imagenet": [{"random_resized_crop": {"size": 224, "p": 1}}, {"hflip": {"p": 0.5}},
                 {"color_jitter": {"p": 0.8}}, {"gaussian_blur": {"sigma": [0.1, 2.0], "p": 0.2}}],
    # issue 15's "basic" job: the noise makes it the hardest content to compress
    "basic": [{"random_resized_crop": {"size": 224, "scale": [1, 1], "ratio": [1, 1], "p": 1}}, {"hflip": {"p": 0.5}},
              {"affine": {"degrees": 15, "scale": 0.1, "translate": 0.1, "p": 1}},
              {"brightness": {"limit": 0.2, "p": 1}}, {"contrast": {"factor": 0.2, "p": 1}},
              {"gaussian_noise": {"std": [0.01, 0.05], "p": 1}}],
}


def photos(count: int, pipeline: str = "imagenet") -> np.ndarray:
    """``count`` 224x224 crops (RGB uint8) of the two sample photos, augmented by ``pipeline``."""
    crops = []
    for name in ("china.jpg", "flower.jpg"):
        img = load_sample_image(name)
        h, w = img.shape[:2]
        for i in range(count // 2):
            y, x = (i * 37) % (h - 256), (i * 53) % (w - 256)
            crops.append(img[y:y + 256, x:x + 256])
    return Pipeline.from_config(PIPELINES[pipeline], seed=0)(np.stack(crops))


BASELINE = "cv2 default (imwrite)"


def _cv2(ext: str, *params):
    """cv2.imencode as a caller holding RGB (or one-channel) images does it: BGR first."""
    def encode(image):
        pixels = image[..., 0] if image.shape[-1] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        return cv2.imencode(ext, pixels, list(params))[1]
    return encode


def _pillow(level: int):
    def encode(image):
        buf = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG", compress_level=level)
        return buf.getvalue()
    return encode


def candidates(kind: str, gray: bool = False) -> dict:
    """name -> encode(image) -> bytes-like, for the codecs that import (and take gray when ``gray``)."""
    png, strat, filt = cv2.IMWRITE_PNG_COMPRESSION, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_FILTER
    out = {}
    if kind in ("png", "all"):
        out.update({f"cv2 level {lv}": _cv2(".png", png, lv) for lv in (0, 1, 3, 6, 9)})
        for lv in (1, 6):
            for sname in ("FILTERED", "RLE", "HUFFMAN_ONLY"):
                out[f"cv2 level {lv} strategy {sname}"] = _cv2(
                    ".png", png, lv, strat, getattr(cv2, f"IMWRITE_PNG_STRATEGY_{sname}"))
        for fname in ("NONE", "SUB", "UP", "AVG", "PAETH", "FAST_FILTERS", "ALL_FILTERS"):
            flag = getattr(cv2, f"IMWRITE_PNG_FILTER_{fname}", None) or getattr(cv2, f"IMWRITE_PNG_{fname}")
            out[f"cv2 level 1 RLE filter {fname}"] = _cv2(".png", png, 1, strat, cv2.IMWRITE_PNG_STRATEGY_RLE, filt, flag)
        out.update({f"augcli png_compression {lv}": partial(encode_image, image_format="png", setting=lv)
                    for lv in range(10)})
        out.update({f"Pillow compress_level {lv}": _pillow(lv) for lv in (1, 6)})
        out.update(_optional_png(gray))
    if kind in ("lossy", "all"):
        for q in (90, 95):
            out[f"cv2 jpg quality {q}"] = _cv2(".jpg", cv2.IMWRITE_JPEG_QUALITY, q)
            out[f"augcli jpg quality {q}"] = partial(encode_image, image_format="jpg", setting=q)
        for q in (80, 90):
            out[f"augcli webp quality {q}"] = partial(encode_image, image_format="webp", setting=q)
    return out


def _first_channel(encode):
    return lambda image: encode(image[..., 0])


def _optional_png(gray: bool) -> dict:
    out = {}
    try:
        import imagecodecs
        out.update({f"imagecodecs png level {lv}": partial(imagecodecs.png_encode, level=lv) for lv in (1, 3, 6)})
        if gray:  # imagecodecs wants (H, W) for one channel
            out = {name: _first_channel(enc) for name, enc in out.items()}
    except ImportError:
        pass
    try:
        if gray:
            raise ImportError("fpng encodes RGB and RGBA only")
        from fpng import fpng_ext
        fpng_ext.init()
        out["fpng"] = fpng_ext.encode_ndarray  # RGB only, no setting
    except ImportError:
        pass
    return out


def _pass(encode, images: np.ndarray) -> float:
    t0 = time.perf_counter()
    for img in images:
        encode(img)
    return time.perf_counter() - t0


def measure(encoders: dict, images: np.ndarray, repeats: int) -> dict:
    """name -> (median ms per image, median time ratio to the baseline, mean bytes per image).

    Each round times every encoder right after a pass of the baseline (A B, A C, ...), so
    background load hits both sides of a ratio alike; the ratio is the median over rounds."""
    sizes = {name: float(np.mean([len(enc(img)) for img in images])) for name, enc in encoders.items()}  # + warm-up
    times = {name: [] for name in encoders}
    ratios = {name: [] for name in encoders}
    for _ in range(repeats):
        for name, enc in encoders.items():
            base = _pass(encoders[BASELINE], images)
            times[name].append(_pass(enc, images))
            ratios[name].append(times[name][-1] / base)
    return {name: (statistics.median(times[name]) / len(images) * 1e3, statistics.median(ratios[name]), sizes[name])
            for name in encoders}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=64, help="photo crops (default 64)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--only", choices=("png", "lossy", "all"), default="all")
    parser.add_argument("--pipeline", choices=tuple(PIPELINES), default="imagenet", help="what made the crops")
    parser.add_argument("--gray", action="store_true", help="encode the crops' luma (one channel)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    images = photos(args.count, args.pipeline)
    if args.gray:
        images = np.stack([cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None] for img in images])
    encoders = {BASELINE: _cv2(".png"), **candidates(args.only, gray=args.gray)}
    rows = measure(encoders, images, args.repeats)
    base_size = rows[BASELINE][2]
    print(f"{len(images)} crops {images.shape[1]}x{images.shape[2]}x{images.shape[3]} ({args.pipeline}), "
          f"OpenCV {cv2.__version__}, {args.repeats} rounds; ratios are to {BASELINE}")
    print(f"{'encoder':40s} {'ms/image':>9s} {'time ratio':>10s} {'bytes/image':>12s} {'size ratio':>10s}")
    for name, (ms, ratio, size) in rows.items():
        print(f"{name:40s} {ms:9.2f} {ratio:10.3f} {size:12.0f} {size / base_size:10.3f}")


if __name__ == "__main__":
    main()
