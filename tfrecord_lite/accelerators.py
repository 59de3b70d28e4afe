"""Which library does each job that has a fast way and a portable one: found once, here.

==============  ==================================  ==============================
job             fast, best first                    portable
==============  ==================================  ==============================
CRC32C          google-crc32c, crcmod (C builds)    pure Python, ~1000x slower
JPEG check      simplejpeg (libjpeg-turbo)          (a dependency: always there)
PNG decoding    the ``fast-png`` extra              Pillow
==============  ==================================  ==============================

Detection only looks the modules up (``importlib.util.find_spec``) and reads versions
from package metadata: nothing heavy is imported, so ``--version`` reports what a job
will use in milliseconds, and a command that decodes no PNG never loads numba. The
modules that do the work load the chosen library on first use, by the ``backend`` key:
``crc32c``, ``images`` (the JPEG check) and ``png``. The choice never changes an output
byte. Tests pick a backend through those modules' parameters (``crc_fn``,
``png_decoder``), or call :func:`detect` with their own environment and finder.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

FAST_PNG_SWITCH = "TFRECORD_LITE_FAST_PNG"
"""Set to 0 in the environment to decode every PNG with Pillow."""
FAST_PNG_INSTALL = "pip install numba deflate"
"""What the ``fast-png`` extra adds, as PyPI packages (in a clone, ``pip install
'.[fast-png]'`` does the same)."""

Finder = Callable[[str], bool]
"""Whether a module can be imported, without importing it."""


@dataclass(frozen=True)
class Choice:
    """The library chosen for one job.

    Attributes:
        backend: the key the working module loads by, e.g. "google-crc32c", "pillow".
        text: what ``--version`` prints, with a ``{}`` for each of ``versions``.
        versions: the distributions whose versions ``label`` shows (read on demand:
            package metadata costs tens of milliseconds to import).
    """

    backend: str
    text: str
    versions: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``text`` with the versions, e.g. "simplejpeg 1.9.0"."""
        return self.text.format(*(_version(name) for name in self.versions))


@dataclass(frozen=True)
class Choices:
    crc32c: Choice
    jpeg_check: Choice
    png: Choice

    def report(self) -> str:
        """One line for ``--version``."""
        return (f"CRC32C: {self.crc32c.label}; JPEG check: {self.jpeg_check.label}; "
                f"PNG: {self.png.label}")


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that fails to import
        return False


def _version(distribution: str) -> str:
    import importlib.metadata

    try:
        return " " + importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


def detect(environ: Mapping[str, str] = os.environ, found: Finder = _found) -> Choices:
    """Look for each job's libraries, best first (see the module docstring)."""
    if found("google_crc32c._crc32c"):
        crc = Choice("google-crc32c", "google-crc32c (C)")
    elif found("crcmod._crcfunext"):
        crc = Choice("crcmod", "crcmod (C)")
    else:
        crc = Choice("python", "pure Python (install google-crc32c: about 1000x faster)")

    if found("simplejpeg"):
        jpeg = Choice("simplejpeg", "simplejpeg{}", ("simplejpeg",))
    else:
        jpeg = Choice("missing", "simplejpeg is not installed (pip install simplejpeg)")

    switch = environ.get(FAST_PNG_SWITCH, "")
    missing = [module for module in ("deflate", "numba") if not found(module)]
    if switch.strip().lower() in ("0", "false", "no", "off"):
        png = Choice("pillow", f"Pillow ({FAST_PNG_SWITCH}={switch})")
    elif missing:
        png = Choice("pillow", "Pillow (for faster PNG decoding, the fast-png extra: "
                               f"{FAST_PNG_INSTALL})")
    elif environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0"):
        # numba would run the loop as plain Python, far slower than Pillow.
        png = Choice("pillow", "Pillow (NUMBA_DISABLE_JIT is set)")
    else:
        png = Choice("fast-png", "libdeflate{} + numba{}, Pillow for the rest",
                     ("deflate", "numba"))
    return Choices(crc, jpeg, png)


@functools.cache
def chosen() -> Choices:
    """The choices of this process, made on first call."""
    return detect()
