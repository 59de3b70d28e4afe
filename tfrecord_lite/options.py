"""The options of a sharded job, declared once: ``JobOptions``.

The runners (``local.run``, ``beam.run``) take one ``JobOptions``, which checks itself;
only the public facades (``create``, ``write_dataset``, ``beam.WriteDataset``) take the
options as keywords and build it. The options of each item (``items.ItemOptions``) and
image are derived from it. The manifest records them and the command line takes its
defaults from them: adding an option means adding a field here (and its flag in
``cli.common``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from . import compression as _compression
from . import sharding
from .errors import OptionsError
from .framing import DEFAULT_MAX_RECORD_SIZE
from .validate import MODES

# Field metadata: "manifest" (recorded in the manifest and compared on resume) and
# "local" (the local runner's only: Beam's runner retries and syncs on its own).
_RECORDED = {"manifest": True}
_LOCAL_ONLY = {"local": True}


@dataclass(frozen=True)
class JobOptions:
    """How a job turns items into shards; frozen, picklable (sent to Beam workers).

    Attributes:
        shuffle: write the items in a seeded random order.
        seed: the shuffle seed (None: a new one is drawn when the job starts and
            recorded in the manifest; recorded as None without shuffle).
        store_images: store the image bytes (``image/encoded``).
        compression: "none", "gzip" or "zlib" (TensorFlow's spellings and None are
            taken, and stored normalized).
        quality: JPEG quality of converted images, 1 to 100.
        max_side: downscale images whose longer side exceeds it (None: never).
        decode_check: decode each stored image to prove it decodes.
        validation: "strict", "lenient" or "off" (see ``validate``).
        root: read relative filenames from here; refuse paths that lead outside it.
        max_record_size: an item whose record would be longer fails (default: 256 MiB,
            the longest record the readers accept by default), so that no reader
            takes a written record for damage. Recorded when not the default.
        resume: finish an interrupted run (local runner).
        fsync: flush every file to the disk before naming it (local runner).
        worker_timeout: seconds a worker process may go without reporting progress
            (an item done, or a second's worth) before it is killed and the job fails,
            to be resumed (None: wait for ever; local runner).
    Raises:
        OptionsError: (a ValueError) an option is out of range.
    """

    shuffle: bool = field(default=True, metadata=_RECORDED)
    seed: Optional[int] = field(default=None, metadata=_RECORDED)
    store_images: bool = field(default=True, metadata=_RECORDED)
    compression: Optional[str] = field(default="none", metadata=_RECORDED)
    quality: int = field(default=95, metadata=_RECORDED)
    max_side: Optional[int] = field(default=None, metadata=_RECORDED)
    decode_check: bool = field(default=True, metadata=_RECORDED)
    validation: str = field(default="strict", metadata=_RECORDED)
    root: Optional[str] = field(default=None, metadata=_RECORDED)
    max_record_size: int = field(default=DEFAULT_MAX_RECORD_SIZE, metadata=_RECORDED)
    resume: bool = field(default=False, metadata=_LOCAL_ONLY)
    fsync: bool = field(default=False, metadata=_LOCAL_ONLY)
    worker_timeout: Optional[float] = field(default=600.0, metadata=_LOCAL_ONLY)

    def __post_init__(self) -> None:
        try:
            compression = _compression.normalize(self.compression)
        except ValueError as exc:
            raise OptionsError(str(exc)) from None
        object.__setattr__(self, "compression", compression)
        if self.root is not None:
            object.__setattr__(self, "root", os.fspath(self.root))
        if not 1 <= self.quality <= 100:
            raise OptionsError(f"quality must be between 1 and 100, got {self.quality}")
        if self.max_side is not None and self.max_side < 1:
            raise OptionsError(f"max_side must be at least 1, got {self.max_side}")
        if (isinstance(self.max_record_size, bool) or not isinstance(self.max_record_size, int)
                or self.max_record_size < 1):
            raise OptionsError(f"max_record_size must be a whole number of bytes >= 1, got "
                               f"{self.max_record_size!r}")
        if self.worker_timeout is not None and (
                isinstance(self.worker_timeout, bool)
                or not isinstance(self.worker_timeout, (int, float))
                or not self.worker_timeout > 0):
            raise OptionsError(f"worker_timeout must be a number of seconds > 0, or None, "
                               f"got {self.worker_timeout!r}")
        if self.validation not in MODES:
            raise OptionsError(f"validation must be one of {', '.join(MODES)}, "
                               f"got {self.validation!r}")

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each option's default, by name (the command line's defaults)."""
        return {f.name: f.default for f in dataclasses.fields(cls)}

    def manifest(self) -> dict[str, Any]:
        """The ``options`` the manifest (and the resume journal) records."""
        recorded = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                    if f.metadata.get("manifest")}
        if not self.shuffle:
            recorded["seed"] = None
        if self.max_record_size == DEFAULT_MAX_RECORD_SIZE:
            del recorded["max_record_size"]  # as the manifests of earlier versions
        return recorded

    def seeded(self, earlier: int | None = None) -> JobOptions:
        """These options with the seed the job uses: the given one, else ``earlier``
        (an interrupted run's), else a new one. Without shuffle, unchanged."""
        if not self.shuffle or self.seed is not None:
            return self
        return dataclasses.replace(
            self, seed=earlier if earlier is not None else sharding.new_seed())


PathOrNone = Union[str, "os.PathLike[str]", None]


def fspath_or_none(path: PathOrNone) -> str | None:
    """A path given as ``str`` or ``PathLike`` as ``str``; None stays None."""
    return None if path is None else os.fspath(path)
