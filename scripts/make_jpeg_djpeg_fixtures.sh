#!/usr/bin/env bash
# Writes JPEGs with the sampling layouts Pillow cannot ask for (h1v2, 4:1:1, 4×2, 3×1, chroma 2 samples
# wide, RGB without colour transform, progressive with restarts) and libjpeg-turbo's decode of each by
# djpeg on its defaults (ISLOW IDCT, fancy upsampling: what Pillow's convert('RGB') gets), for
# tests/image/jpeg_decoder_test.ts. Needs cjpeg/djpeg (Debian: libjpeg-turbo-progs) and python3.
#   bash scripts/make_jpeg_djpeg_fixtures.sh tests/fixtures/jpeg_djpeg
set -euo pipefail
out=$1
mkdir -p "$out"
# A noisy photo-like PPM of w×h with hard edges (deterministic LCG noise).
source_ppm() {
  python3 - "$1" "$2" <<'PY'
import math, sys
w, h = int(sys.argv[1]), int(sys.argv[2])
s = 7
px = bytearray()
for y in range(h):
    for x in range(w):
        for c, base in enumerate((128 + 100 * math.sin(x / 7) * math.cos(y / 11), 128 + 90 * math.cos((x + y) / 9), 255 * x / max(1, w - 1))):
            s = (s * 1103515245 + 12345) & 0x7fffffff
            v = base + ((s >> 16) % 41) - 20
            if y == h // 3 or x == w // 2: v = (250, 5, 5)[c]
            px.append(max(0, min(255, int(v))))
sys.stdout.buffer.write(b"P6\n%d %d\n255\n" % (w, h) + bytes(px))
PY
}
make() { # name w h cjpeg-options...
  local name=$1 w=$2 h=$3
  shift 3
  source_ppm "$w" "$h" > "$out/$name.src.ppm"
  cjpeg "$@" -outfile "$out/$name.jpg" "$out/$name.src.ppm"
  djpeg -ppm -outfile "$out/$name.ppm" "$out/$name.jpg"
  rm "$out/$name.src.ppm"
}
make h1v2_chroma_43x37 43 37 -quality 90 -sample 1x2,1x1,1x1
make h2v2_luma_h2v1_chroma_41x35 41 35 -quality 90 -sample 2x2,2x1,2x1
make s411_67x21 67 21 -quality 85 -sample 4x1,1x1,1x1
make s42_53x29 53 29 -quality 85 -sample 4x2,1x1,1x1
make s31_40x19 40 19 -quality 88 -sample 3x1,1x1,1x1
make s420_chroma2wide_3x9 3 9 -quality 90 -sample 2x2,1x1,1x1
make s422_chroma2wide_4x6 4 6 -quality 90 -sample 2x1,1x1,1x1
make s420_2x2 2 2 -quality 90 -sample 2x2,1x1,1x1
make rgb_no_transform_30x20 30 20 -quality 90 -rgb
make progressive_422_restart_58x44 58 44 -quality 80 -sample 2x1,1x1,1x1 -progressive -restart 1B
make progressive_h1v2_restart_rows_37x50 37 50 -quality 80 -sample 1x2,1x1,1x1 -progressive -restart 1
make q100_444_19x13 19 13 -quality 100 -sample 1x1,1x1,1x1
make q20_420_120x90 120 90 -quality 20 -sample 2x2,1x1,1x1
