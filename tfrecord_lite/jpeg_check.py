"""The decode check of a JPEG: whether libjpeg-turbo decodes every pixel, and if not, why.

The check runs in libjpeg-turbo through ``simplejpeg`` (a dependency), before any full
decode: the JPEG is decoded at 1/8 scale, luma only (CMYK as it is), which reads every
byte of every scan without a full-size pixel buffer, and the first warning libjpeg
gives decides:

=====================================================  ==========================  =========
libjpeg-turbo message (jerror.h)                       code                        verdict
=====================================================  ==========================  =========
Corrupt JPEG data: premature end of data segment       JWRN_HIT_MARKER             truncated
Premature end of JPEG file                             JWRN_JPEG_EOF               truncated
Corrupt JPEG data: bad Huffman code                    JWRN_HUFF_BAD_CODE          corrupt
Corrupt JPEG data: bad arithmetic code                 JWRN_ARITH_BAD_CODE         corrupt
Corrupt JPEG data: found marker 0x.. instead of RSTn   JWRN_MUST_RESYNC            corrupt
Invalid SOS parameters for sequential JPEG             JWRN_NOT_SEQUENTIAL         corrupt
Inconsistent progression sequence for component ...    JWRN_BOGUS_PROGRESSION      corrupt
any error, any other message                           JERR_...                    corrupt
Corrupt JPEG data: N extraneous bytes before marker    JWRN_EXTRANEOUS_DATA        no loss
Warning: unknown JFIF revision number                  JWRN_JFIF_MAJOR             no loss
Unknown Adobe color transform code                     JWRN_ADOBE_XFORM            no loss
Corrupt JPEG data: bad ICC marker                      JWRN_BOGUS_ICC              no loss
=====================================================  ==========================  =========

The first four "no loss" warnings lose no pixels. libjpeg stops at the first warning,
so one of them could hide damage further on: extraneous bytes before the end-of-image
marker come after every scan was decoded, so the check ends there; any other is looked
past by checking again a copy of the file whose header keeps only what the pixels are
decoded from (DQT, DHT, DAC, DRI, SOF; no APPn, COM or garbage between segments), with
the scans as they are. Garbage left between two scans in that copy is damage
("corrupt"): the scans after it cannot be checked.

8-bit Huffman and arithmetic JPEGs of 1, 3 or 4 components are checked here; 12-bit,
lossless and hierarchical ones are left to Pillow, which decodes them in full or
refuses them.
"""

from __future__ import annotations

import re
from typing import Any

from .accelerators import chosen
from .errors import ImageError
from .jpeg import NO_LENGTH, JpegInfo, segments

# What the decode check accepts: 8-bit Huffman (baseline, extended, progressive) and
# arithmetic (sequential, progressive) JPEG.
_CHECKED_SOF = {0xC0, 0xC1, 0xC2, 0xC9, 0xCA}
# libjpeg-turbo's warnings (jerror.h), by their message text: see the module docstring.
_EXTRANEOUS = re.compile(r"Corrupt JPEG data: \d+ extraneous bytes before marker 0x([0-9a-f]{2})")
_BENIGN_WARNINGS = (
    "Warning: unknown JFIF revision number",  # JWRN_JFIF_MAJOR
    "Unknown Adobe color transform code",  # JWRN_ADOBE_XFORM
    "Corrupt JPEG data: bad ICC marker",  # JWRN_BOGUS_ICC
)
_TRUNCATED_WARNINGS = (
    "Corrupt JPEG data: premature end of data segment",  # JWRN_HIT_MARKER
    "Premature end of JPEG file",  # JWRN_JPEG_EOF
)


def _simplejpeg() -> Any:
    """The JPEG check's library (``accelerators``), imported on first use: it imports
    numpy (tens of milliseconds), which a job without the decode check never needs, and
    every worker process starts afresh."""
    if chosen().jpeg_check.backend != "simplejpeg":
        raise ImageError("the JPEG decode check needs simplejpeg (pip install simplejpeg); "
                         "or store without the check")
    import simplejpeg

    return simplejpeg


def _libjpeg_message(data: bytes, info: JpegInfo) -> str | None:
    """libjpeg-turbo's first warning or error decoding the JPEG at 1/8 scale; None if none.

    Luma only (CMYK as it is): every byte of every scan is still read, at a fraction of
    the cost of a full decode, and no full-size pixel buffer is allocated.
    """
    colorspace = "CMYK" if info.components == 4 else "GRAY"
    try:
        _simplejpeg().decode_jpeg(data, colorspace, min_height=info.height // 8,
                                  min_width=info.width // 8, strict=True)
    except ValueError as exc:  # simplejpeg raises ValueError with libjpeg's message
        return str(exc) or "libjpeg error"
    return None


def _benign(message: str) -> int | None:
    """For a warning that loses no pixels, the marker it came before (-1: not about a
    marker); None for any other message (see the table in the module docstring)."""
    extraneous = _EXTRANEOUS.match(message)
    if extraneous is not None:
        return int(extraneous[1], 16)
    return -1 if message.startswith(_BENIGN_WARNINGS) else None


def _scan_core(data: bytes) -> bytes | None:
    """The JPEG with only what libjpeg decodes pixels from before the first scan.

    Keeps the tables, restart interval and frame header (DQT, DHT, DAC, DRI, SOF and
    any marker not known to be metadata), then everything from the first start of scan
    as it is; drops APPn and COM segments and any garbage between segments. None when
    the markers cannot be walked.
    """
    parts = [b"\xff\xd8"]
    for marker, start, end in segments(data):
        if marker == 0xDA:
            parts.append(data[start:])
            return b"".join(parts)
        if marker not in NO_LENGTH and not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            parts.append(data[start:end])
    return None


def jpeg_damage(data: bytes, info: JpegInfo) -> tuple[str, str] | None:
    """Whether libjpeg-turbo decodes every pixel of the JPEG: None, or ``(message,
    reason)`` with libjpeg's message and "truncated" or "corrupt".

    A warning that loses no pixels is no damage. Because libjpeg stops at the first
    warning, a harmless one in the header is looked past by checking a copy without
    the header's metadata and garbage (see the module docstring).
    """
    message = _libjpeg_message(data, info)
    if message is None:
        return None
    marker = _benign(message)
    if marker is None:
        return message, _reason(message)
    if marker == 0xD9:  # after the last scan: every pixel was decoded
        return None
    core = _scan_core(data)
    if core is None:
        return message, "corrupt"
    second = _libjpeg_message(core, info)
    if second is None:
        return None
    marker = _benign(second)
    if marker is None:
        return second, _reason(second)
    if marker == 0xD9:
        return None
    # Garbage between two scans: the scans after it cannot be checked past it.
    return f"{second} (between two scans)", "corrupt"


def _reason(message: str) -> str:
    return "truncated" if message.startswith(_TRUNCATED_WARNINGS) else "corrupt"


def checked_by_libjpeg(info: JpegInfo) -> bool:
    """Whether the libjpeg check applies: 8-bit, Huffman or arithmetic, 1, 3 or 4
    components (others are left to Pillow, which decodes them in full or refuses)."""
    return info.precision == 8 and info.sof in _CHECKED_SOF and info.components in (1, 3, 4)

