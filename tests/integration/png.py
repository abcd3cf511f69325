"""Reading a PNG's pixels with the standard library: enough for screenshots.

8-bit RGB or RGBA, not interlaced (what Chromium writes); anything else is
refused with the reason.
"""

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {2: 3, 6: 4}  # colour type: RGB, RGBA


@dataclass(frozen=True)
class Image:
    """Decoded pixels, row by row, `channels` bytes per pixel."""

    width: int
    height: int
    channels: int
    rows: list[bytes]

    def rgb(self, x: int, y: int) -> tuple[int, int, int]:
        start = x * self.channels
        r, g, b = self.rows[y][start : start + 3]
        return r, g, b


def read_png(data: bytes) -> Image:
    """Decode `data`, a whole PNG file."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file: the signature is missing")
    header, idat = _chunks(data[len(SIGNATURE) :])
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in CHANNELS or interlace:
        msg = f"unsupported PNG: depth {depth}, colour {colour}, interlace {interlace}"
        raise ValueError(msg)
    channels = CHANNELS[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        previous = _unfilter(line[0], bytearray(line[1:]), previous, channels)
        rows.append(previous)
    return Image(width, height, channels, rows)


def _chunks(body: bytes) -> tuple[bytes, bytes]:
    header, idat, at = b"", bytearray(), 0
    while at < len(body):
        (length,) = struct.unpack(">I", body[at : at + 4])
        kind, content = body[at + 4 : at + 8], body[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            header = content
        elif kind == b"IDAT":
            idat += content
        at += 12 + length
    return header, bytes(idat)


def _unfilter(kind: int, line: bytearray, above: bytes, bpp: int) -> bytes:
    """Undo one scanline's filter (PNG spec, section 9)."""
    for i, value in enumerate(line):
        left = line[i - bpp] if i >= bpp else 0
        up = above[i]
        corner = above[i - bpp] if i >= bpp else 0
        if kind == 1:
            value += left
        elif kind == 2:
            value += up
        elif kind == 3:
            value += (left + up) // 2
        elif kind == 4:
            value += _paeth(left, up, corner)
        line[i] = value & 0xFF
    return bytes(line)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c
