"""A JPEG's header, read from its markers: size, components, precision and coding.

Only the bytes before the first scan are read, so a file's header can be checked (its
size against the pixel limit, whether it can be stored as it is) before any pixel is
decoded. No image library is imported.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

# Every JPEG start-of-frame marker: Huffman and arithmetic, sequential, progressive,
# lossless and hierarchical.
_ALL_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# Markers without a length field: TEM, RSTn, SOI.
NO_LENGTH = {0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8}
_U16 = struct.Struct(">H")


@dataclass(frozen=True)
class JpegInfo:
    """What a JPEG's frame header says, and where it ends."""

    width: int
    height: int
    components: int
    precision: int
    sof: int
    adobe_transform: int | None
    frame_end: int  # offset just past the frame header: scan data and EOI come after


def segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """``(marker, start, end)`` of each marker segment of a JPEG after its SOI, up to and
    including the first start of scan (``end``: the end of its header). Garbage and fill
    bytes between segments are skipped, as libjpeg skips them; the walk stops early where
    the markers cannot be followed (a bad length, the data cut)."""
    n = len(data)
    pos = 2
    while pos + 4 <= n:
        if data[pos] != 0xFF or data[pos + 1] in (0x00, 0xFF):
            pos = _next_marker(data, pos + 1)  # garbage (or fill bytes) between segments
            if pos < 0:
                return
            continue
        marker = data[pos + 1]
        if marker in NO_LENGTH:
            yield marker, pos, pos + 2
            pos += 2
            continue
        (length,) = _U16.unpack_from(data, pos + 2)
        if marker == 0xDA:  # the scans follow: the walk ends here
            yield marker, pos, pos + 2 + length
            return
        if length < 2:
            return
        yield marker, pos, pos + 2 + length
        pos += 2 + length


def jpeg_info(data: bytes) -> JpegInfo | None:
    """Parse a JPEG's markers up to its start-of-frame; None when not a JPEG or none
    is found."""
    if data[:3] != b"\xff\xd8\xff":
        return None
    adobe: int | None = None
    for marker, start, end in segments(data):
        segment = start + 4
        if marker == 0xEE and data[segment:segment + 5] == b"Adobe" and end - start >= 14:
            adobe = data[segment + 11]
        elif marker in _ALL_SOF:
            if segment + 6 > len(data):
                return None
            precision = data[segment]
            height, width = struct.unpack_from(">HH", data, segment + 1)
            return JpegInfo(width, height, data[segment + 5], precision, marker, adobe, end)
        elif marker == 0xDA:  # scan data before any frame header
            return None
    return None


def _next_marker(data: bytes, pos: int) -> int:
    """Offset of the next 0xFF that starts a marker (not followed by 0x00 or 0xFF)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return -1
        if data[pos + 1] not in (0x00, 0xFF):
            return pos
        pos += 1
