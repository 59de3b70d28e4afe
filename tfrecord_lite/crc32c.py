"""CRC32C (Castagnoli) and TFRecord's masked form, with the fastest backend installed.

The backend is chosen once, by ``accelerators``: ``google-crc32c``'s C extension, else
``crcmod``'s, else pure Python (with one warning logged). Every function taking ``crc_fn``
uses it unless given another, as tests do.
"""

from __future__ import annotations

import logging
from typing import Callable

from .accelerators import chosen

logger = logging.getLogger(__name__)

CrcFn = Callable[[bytes], int]

MASK_DELTA = 0xA282EAD8
"""The constant TFRecord adds to a rotated CRC32C (see ``mask``)."""
_U32 = 0xFFFFFFFF


def _make_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc32c_python(data: bytes) -> int:
    """CRC32C in pure Python: slow, the reference the others are tested against."""
    crc = _U32
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _U32


def _google_crc32c() -> CrcFn:
    import google_crc32c

    if google_crc32c.implementation != "c":  # its extension was found but fails to load
        return _pure_python()
    return google_crc32c.value


def _crcmod() -> CrcFn:
    import crcmod.predefined

    return crcmod.predefined.mkPredefinedCrcFun("crc-32c")


def _pure_python() -> CrcFn:
    logger.warning("no compiled CRC32C found (install google-crc32c): using pure Python, "
                   "about 1000x slower")
    return crc32c_python


BACKENDS: dict[str, Callable[[], CrcFn]] = {
    "google-crc32c": _google_crc32c,
    "crcmod": _crcmod,
    "python": _pure_python,
}
"""``accelerators`` backend key -> loader of the CRC32C function."""

BACKEND = chosen().crc32c.label
"""The backend's name, as ``--version`` shows it."""
crc32c: CrcFn = BACKENDS[chosen().crc32c.backend]()
"""The CRC32C function in use."""


def mask(crc: int) -> int:
    """TFRecord's masking of a CRC32C: rotate right by 15 bits and add a constant."""
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & _U32


def masked_crc32c(data: bytes, crc_fn: CrcFn | None = None) -> int:
    """The masked CRC32C of ``data``, as stored in TFRecord headers and footers."""
    return mask((crc_fn or crc32c)(data))
