"""Build data/sample-folder: a tiny image-classification folder cut from the two photographs that
ship with scikit-learn (china.jpg, flower.jpg). Deterministic; rerun to regenerate.

    python data/make_sample_folder.py
"""

from pathlib import Path

from PIL import Image
from sklearn.datasets import load_sample_image

ROOT = Path(__file__).resolve().parent / "sample-folder"
CROP = 96
GRID = (3, 4)  # rows x columns of crops per photo -> 12 images per class


def main() -> None:
    for name in ("china", "flower"):
        photo = load_sample_image(f"{name}.jpg")
        h, w = photo.shape[:2]
        folder = ROOT / name
        folder.mkdir(parents=True, exist_ok=True)
        for r in range(GRID[0]):
            for c in range(GRID[1]):
                y = r * (h - CROP) // (GRID[0] - 1)
                x = c * (w - CROP) // (GRID[1] - 1)
                crop = Image.fromarray(photo[y:y + CROP, x:x + CROP])
                crop.save(folder / f"{name}_{r}{c}.jpg", quality=90)
    print(f"wrote {ROOT}")


if __name__ == "__main__":
    main()
