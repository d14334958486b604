"""Reading the screenshots tests take: a small PNG decoder (8-bit RGB or RGBA, no interlace).

Enough to tell a drawn page from a blank one by its colours, without an imaging library.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
Color = tuple[int, int, int]


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    rows: list[bytes]  # RGB(A) bytes per row
    channels: int

    def colors(self, step: int = 4) -> Counter[Color]:
        """How often each colour appears, sampling every ``step``-th pixel of every row."""
        seen: Counter[Color] = Counter()
        size = self.channels
        for row in self.rows:
            for x in range(0, len(row), size * step):
                seen[(row[x], row[x + 1], row[x + 2])] += 1
        return seen


def hex_color(text: str) -> Color:
    """``#3b6fb6`` as (59, 111, 182)."""
    value = text.removeprefix("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def read_png(path: Path) -> Picture:
    """Decode ``path``; raises ValueError for what this reader does not handle."""
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"{path} is not a PNG")
    position, chunks, header = 8, [], None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    if header is None:
        raise ValueError(f"{path} has no IHDR")
    width, height, depth, color_type, _, _, interlace = header
    if depth != 8 or interlace or color_type not in (2, 6):
        raise ValueError(f"{path}: only 8-bit RGB/RGBA without interlace is read here")
    channels = 3 if color_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], line, previous, channels)
        rows.append(bytes(line))
        previous = line
    return Picture(width, height, rows, channels)


def _unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> None:
    """Undo one row's PNG filter in place (RFC 2083, section 6)."""
    if kind == 1:
        for i in range(bpp, len(line)):
            line[i] = (line[i] + line[i - bpp]) & 255
    elif kind == 2:
        for i in range(len(line)):
            line[i] = (line[i] + previous[i]) & 255
    elif kind == 3:
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + previous[i]) >> 1)) & 255
    elif kind == 4:
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[i] = (line[i] + predictor) & 255
    elif kind != 0:
        raise ValueError(f"unknown PNG filter {kind}")
