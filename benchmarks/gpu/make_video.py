"""Write the worst-case video the default processor admits: 14 frames of 3584×3584 (2 fps, H.264 mp4).

    python benchmarks/gpu/make_video.py OUT.mp4 [--frames 14 --size 3584]
"""
import argparse

import av
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--frames", type=int, default=14)
ap.add_argument("--size", type=int, default=3584)
args = ap.parse_args()
n = args.size
with av.open(args.out, "w") as box:
    stream = box.add_stream("libx264", rate=2)
    stream.width = stream.height = n
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": "35", "preset": "ultrafast"}
    y, x = np.mgrid[0:n, 0:n]
    for i in range(args.frames):
        img = np.stack([(x * 255 // n + 9 * i) % 256, (y * 255 // n) % 256, ((x + y) // 14 % 2) * 200], -1).astype(np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            box.mux(packet)
    for packet in stream.encode():
        box.mux(packet)
