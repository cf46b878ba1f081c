"""Packs a model folder small enough to travel to the GPU machine: every file's even and odd bytes are split into
two planes (a bf16 weight's high byte, mostly exponent, compresses far better on its own) and xz-compressed.
usage: pack_model.py pack SRC_DIR OUT_DIR   |   pack_model.py unpack PACK_DIR DEST_DIR"""
import lzma, os, sys
mode, src, dst = sys.argv[1:4]
os.makedirs(dst, exist_ok=True)
if mode == "pack":
    for name in sorted(os.listdir(src)):
        data = open(os.path.join(src, name), "rb").read()
        with lzma.open(os.path.join(dst, name + ".even.xz"), "wb", preset=6) as f: f.write(data[0::2])
        with lzma.open(os.path.join(dst, name + ".odd.xz"), "wb", preset=6) as f: f.write(data[1::2])
else:
    for name in sorted({n[:-8] for n in os.listdir(src) if n.endswith(".even.xz")}):
        even = lzma.open(os.path.join(src, name + ".even.xz")).read()
        odd = lzma.open(os.path.join(src, name + ".odd.xz")).read()
        out = bytearray(len(even) + len(odd)); out[0::2] = even; out[1::2] = odd
        open(os.path.join(dst, name), "wb").write(out)
