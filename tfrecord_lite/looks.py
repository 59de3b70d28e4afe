"""What a file looks like, from its first bytes: for the messages that name a file that is
not what a command expects (``verify dataset.json``, ``create --dataset_path`` of an
image, ``from-coco`` of a YAML file), so that they say what it is instead.

Only a guess, for people: nothing is decided by it.
"""

from __future__ import annotations

import struct

from .crc32c import masked_crc32c

HEAD = 16  # the bytes ``looks_like`` needs

# The image formats, by their first bytes at an offset (``images`` recognises image files
# by this table).
IMAGE_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"WEBP", 8, "WEBP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
)
# Other kinds of files, by their first bytes.
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "GZIP-compressed data"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
)
_BOM = b"\xef\xbb\xbf"


def _is_tfrecord_header(head: bytes) -> bool:
    if len(head) < 12:
        return False
    (crc,) = struct.unpack_from("<I", head, 8)
    return masked_crc32c(head[:8]) == crc


def looks_like(head: bytes) -> str | None:
    """What a file whose first bytes are ``head`` (``HEAD`` of them, or all of a shorter
    file) looks like: ``"JSON text"``, ``"text"``, ``"a JPEG image"``, ``"GZIP-compressed
    data"``, ``"ZLIB-compressed data"``, ``"a TFRecord file"``, ...; None when it looks like
    none of these."""
    for magic, offset, name in IMAGE_MAGIC:
        if head[offset:offset + len(magic)] == magic and (name != "WEBP"
                                                           or head[:4] == b"RIFF"):
            return f"a {name} image"
    for magic, what in _OTHER_MAGIC:
        if head.startswith(magic):
            return what
    if _is_tfrecord_header(head):
        return "a TFRecord file"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:
        return "ZLIB-compressed data"
    text = head.removeprefix(_BOM)
    if text and _is_text(text):
        return "JSON text" if text.lstrip()[:1] in (b"[", b"{") else "text"
    return None


def _is_text(data: bytes) -> bool:
    """UTF-8 without control characters but tabs and line ends (the last character may be
    cut off)."""
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(data) - 3 or exc.reason != "unexpected end of data":
            return False
        decoded = data[:exc.start].decode("utf-8")
    return all(c >= " " or c in "\t\n\r" for c in decoded) and "\x7f" not in decoded
