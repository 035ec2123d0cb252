"""Image encoders on photo content: ms/image and bytes/image for each candidate and setting.

    .venv/bin/python benchmarks/bench_encoders.py                  # 64 crops, 5 repeats
    .venv/bin/python benchmarks/bench_encoders.py --count 128 --repeats 7 --only png

Data: 224x224 RGB crops of scikit-learn's two sample photos, augmented the ImageNet way by augcli
itself (random resized crop, flip, colour jitter p=0.8, blur p=0.2), i.e. what ``augcli run`` hands
to the encoder. Time is the median over --repeats passes of encoding every crop once (one thread:
encoders are called one image at a time by the shard jobs, which are the parallel unit). Sizes are
means over the crops, and "vs cv2" is the size relative to ``cv2.imencode(".png", img)`` with
OpenCV's defaults (what ``cv2.imwrite`` writes), the baseline issue 15 compares PNG sizes with.

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


def _cv2(ext: str, *params):
    return lambda rgb: cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), list(params))[1]


def _pillow(level: int):
    def encode(rgb):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG", compress_level=level)
        return buf.getvalue()
    return encode


def candidates(kind: str) -> dict:
    """name -> encode(rgb image) -> bytes-like, for the codecs that import."""
    png, strat, filt = cv2.IMWRITE_PNG_COMPRESSION, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_FILTER
    out = {}
    if kind in ("png", "all"):
        out["cv2 default (imwrite)"] = _cv2(".png")
        out.update({f"cv2 level {lv}": _cv2(".png", png, lv) for lv in range(10)})
        for lv in (1, 3, 6):
            for sname in ("DEFAULT", "FILTERED", "RLE", "HUFFMAN_ONLY"):
                out[f"cv2 level {lv} strategy {sname}"] = _cv2(
                    ".png", png, lv, strat, getattr(cv2, f"IMWRITE_PNG_STRATEGY_{sname}"))
        for fname in ("NONE", "SUB", "UP", "AVG", "PAETH", "FAST_FILTERS", "ALL_FILTERS"):
            flag = getattr(cv2, f"IMWRITE_PNG_FILTER_{fname}", None) or getattr(cv2, f"IMWRITE_PNG_{fname}")
            for sname in ("DEFAULT", "RLE"):
                out[f"cv2 level 1 {sname} filter {fname}"] = _cv2(
                    ".png", png, 1, strat, getattr(cv2, f"IMWRITE_PNG_STRATEGY_{sname}"), filt, flag)
        out.update({f"augcli png_compression {lv}": partial(encode_image, image_format="png", setting=lv)
                    for lv in range(10)})
        out.update({f"Pillow compress_level {lv}": _pillow(lv) for lv in (1, 6)})
        out.update(_optional_png())
    if kind in ("lossy", "all"):
        for q in (90, 95):
            out[f"cv2 jpg quality {q}"] = _cv2(".jpg", cv2.IMWRITE_JPEG_QUALITY, q)
            out[f"augcli jpg quality {q}"] = partial(encode_image, image_format="jpg", setting=q)
        for q in (80, 90):
            out[f"augcli webp quality {q}"] = partial(encode_image, image_format="webp", setting=q)
    return out


def _optional_png() -> dict:
    out = {}
    try:
        import imagecodecs
        out.update({f"imagecodecs png level {lv}": partial(imagecodecs.png_encode, level=lv) for lv in (1, 3, 6)})
    except ImportError:
        pass
    try:
        from fpng import fpng_ext
        fpng_ext.init()
        out["fpng"] = fpng_ext.encode_ndarray  # RGB only, no setting
    except ImportError:
        pass
    return out


def measure(encode, images: np.ndarray, repeats: int) -> tuple[float, float]:
    """(median ms per image over ``repeats`` passes, mean bytes per image)."""
    sizes = [len(encode(img)) for img in images]  # also warms the codec up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for img in images:
            encode(img)
        times.append((time.perf_counter() - t0) / len(images) * 1e3)
    return statistics.median(times), float(np.mean(sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=64, help="photo crops (default 64)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per candidate (default 5)")
    parser.add_argument("--only", choices=("png", "lossy", "all"), default="all")
    parser.add_argument("--pipeline", choices=tuple(PIPELINES), default="imagenet", help="what made the crops")
    parser.add_argument("--gray", action="store_true", help="encode the crops' luma (one channel)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    images = photos(args.count, args.pipeline)
    if args.gray:
        images = np.stack([cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None] for img in images])
    rows = [(name, *measure(enc, images, args.repeats)) for name, enc in candidates(args.only).items()]
    base = next((b for n, _, b in rows if n == "cv2 default (imwrite)"), None)
    print(f"{len(images)} crops {images.shape[1]}x{images.shape[2]}x{images.shape[3]} ({args.pipeline}), OpenCV {cv2.__version__}, "
          f"median of {args.repeats} passes")
    print(f"{'encoder':40s} {'ms/image':>9s} {'bytes/image':>12s} {'vs cv2':>7s}")
    for name, ms, size in rows:
        rel = f"{size / base:7.3f}" if base else ""
        print(f"{name:40s} {ms:9.2f} {size:12.0f} {rel}")


if __name__ == "__main__":
    main()
