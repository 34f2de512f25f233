#!/usr/bin/env python3
"""ssb_zoom test data: small PNGs in the formats read_png converts (palette with transparency,
1-bit and 16-bit grey, grey+alpha, 16-bit RGBA, interlaced RGB) and three broken ones (truncated twice, corrupt image data). Pure Python
(zlib only). Run from this folder: python3 make_testdata.py"""
import struct
import zlib

W, H = 20, 13  # odd, non-square


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pack_row(samples, depth):
    """Samples of one row (ints) -> bytes, big-endian, sub-byte depths packed MSB first."""
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    per_byte = 8 // depth
    out = bytearray()
    for i in range(0, len(samples), per_byte):
        byte = 0
        group = samples[i:i + per_byte]
        for j, s in enumerate(group):
            byte |= s << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


def idat(rows, depth, interlaced):
    """rows[y][x] is a tuple of samples; filter type 0 on every scanline."""
    raw = bytearray()
    if not interlaced:
        passes = [(0, 0, 1, 1)]
    else:  # Adam7: (x0, y0, dx, dy)
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                  (1, 0, 2, 2), (0, 1, 1, 2)]
    for x0, y0, dx, dy in passes:
        for y in range(y0, len(rows), dy):
            xs = range(x0, len(rows[0]), dx)
            if len(xs) == 0:
                continue
            raw.append(0)
            raw += pack_row([s for x in xs for s in rows[y][x]], depth)
    return zlib.compress(bytes(raw))


def png(name, colour_type, depth, rows, extra=b"", interlaced=False):
    ihdr = struct.pack(">IIBBBBB", len(rows[0]), len(rows), depth, colour_type, 0, 0,
                       1 if interlaced else 0)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra +
            chunk(b"IDAT", idat(rows, depth, interlaced)) + chunk(b"IEND", b""))
    with open(name, "wb") as f:
        f.write(data)
    return data


def grid(f):
    return [[f(y, x) for x in range(W)] for y in range(H)]


palette = b"".join(bytes((17 * i, 255 - 17 * i, (60 * i) % 256)) for i in range(16))
trns = bytes(255 if i % 3 else 0 for i in range(16))
png("palette_trns.png", 3, 4, grid(lambda y, x: ((x + y) % 16,)),
    chunk(b"PLTE", palette) + chunk(b"tRNS", trns))
png("grey1.png", 0, 1, grid(lambda y, x: ((x // 3 + y // 3) % 2,)))
png("grey16.png", 0, 16, grid(lambda y, x: (x * 3000 + y * 100,)))
png("grey_alpha.png", 4, 8, grid(lambda y, x: (x * 12, 255 - y * 10)))
png("rgba16.png", 6, 16, grid(lambda y, x: (x * 3000, y * 5000, 40000, 65535 - x * 1000)))
rgb = png("rgb_interlaced.png", 2, 8, grid(lambda y, x: (x * 12, y * 19, (x * y) % 256)),
          interlaced=True)
with open("truncated_header.png", "wb") as f:
    f.write(rgb[:20])  # the signature and half of IHDR
with open("truncated_data.png", "wb") as f:
    f.write(rgb[:len(rgb) - 12 - 30])  # cut inside IDAT
with open("corrupt_idat.png", "wb") as f:
    at = rgb.index(b"IDAT") + 4 + 40
    f.write(rgb[:at] + bytes((rgb[at] ^ 0x5A,)) + rgb[at + 1:])  # a flipped byte in IDAT
