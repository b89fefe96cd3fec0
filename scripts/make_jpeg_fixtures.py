# Writes small JPEGs and the RGB that Pillow (libjpeg-turbo) decodes them to, for tests of src/image/jpeg_*.
# Run where Pillow and numpy are installed (the GPU host): python3 scripts/make_jpeg_fixtures.py tests/fixtures/jpeg
import io, json, os, sys
import numpy as np
from PIL import Image, features
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(5)
def photo(w, h, mode="RGB"):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0)
    g = 128 + 90 * np.cos((x + y) / 9.0)
    b = 255 * (x / max(1, w - 1))
    a = np.stack([r, g, b], -1) + rng.normal(0, 18, (h, w, 3))
    a[h // 3: h // 3 + 3, :, :] = [250, 5, 5]  # hard edges
    a[:, w // 2: w // 2 + 2, :] = [0, 0, 0]
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    return img.convert(mode)
cases = [
    ("q90_420_37x23", (37, 23), "RGB", dict(quality=90, subsampling=2)),
    ("q75_420_360x243", (360, 243), "RGB", dict(quality=75, subsampling=2)),
    ("q85_422_61x45", (61, 45), "RGB", dict(quality=85, subsampling=1)),
    ("q95_444_33x17", (33, 17), "RGB", dict(quality=95, subsampling=0)),
    ("q80_gray_29x31", (29, 31), "L", dict(quality=80)),
    ("q90_420_optimized_45x38", (45, 38), "RGB", dict(quality=90, subsampling=2, optimize=True)),
    ("q90_420_progressive_77x53", (77, 53), "RGB", dict(quality=90, subsampling=2, progressive=True)),
    ("q70_444_progressive_31x29", (31, 29), "RGB", dict(quality=70, subsampling=0, progressive=True)),
    ("q80_gray_progressive_19x27", (19, 27), "L", dict(quality=80, progressive=True)),
    ("q100_420_1x1", (1, 1), "RGB", dict(quality=100, subsampling=2)),
    ("q90_420_restart_50x41", (50, 41), "RGB", dict(quality=90, subsampling=2, restart_marker_blocks=3)),
    ("q90_422_restart_rows_70x35", (70, 35), "RGB", dict(quality=90, subsampling=1, restart_marker_rows=1)),
]
manifest = {"pillow": __import__("PIL").__version__, "libjpeg_turbo": features.version("libjpeg_turbo"), "cases": {}}
for name, (w, h), mode, opts in cases:
    buf = io.BytesIO()
    try:
        photo(w, h, mode).save(buf, "JPEG", **opts)
    except Exception as e:  # an option this Pillow lacks
        manifest["cases"][name] = {"skipped": repr(e)}
        continue
    data = buf.getvalue()
    dec = Image.open(io.BytesIO(data))
    rgb = dec.convert("RGB")
    open(os.path.join(out, name + ".jpg"), "wb").write(data)
    open(os.path.join(out, name + ".rgb"), "wb").write(rgb.tobytes())
    manifest["cases"][name] = {"size": [w, h], "mode": dec.mode, "options": {k: v for k, v in opts.items()},
                               "jpg_bytes": len(data), "sampling": getattr(dec, "layer", None)}
json.dump(manifest, open(os.path.join(out, "manifest.json"), "w"), indent=1)
print(json.dumps(manifest, indent=1))
