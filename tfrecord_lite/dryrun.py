"""A dry run: every item checked as a job would check it, without reading images or
writing anything (``validate_dataset``, ``--validate-only``).

Masks are made as a job makes them, at the size the item gives (``height`` and
``width``, as the converters give them), from the mask and label image files, and not
stored; without that size only their forms are checked, and that their files can be read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import items
from .errors import TFRecordLiteError
from .example import ImageFields, encode_example
from .items import ItemOptions
from .job import ItemSource, failure_copy
from .options import JobOptions, fspath_or_none

if TYPE_CHECKING:
    from .masks import Frame

__all__ = ["ValidationReport", "validate_dataset"]


@dataclass
class ValidationReport:
    """What ``validate_dataset`` found: the items that would fail (and how many for each
    reason), the warnings, and the keys not in the item format (items per key path)."""

    total: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    unknown_keys: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def validate_dataset(dataset: Iterable[Any], *, validation: str = "strict",
                     root: str | os.PathLike[str] | None = None,
                     store_images: bool = True) -> ValidationReport:
    """Check every item as ``write_dataset`` would, without reading images or writing.

    Finds what fails an item in the given validation mode (see ``validate``), what the
    encoder refuses (wrong types), duplicate ids, missing image files and paths outside
    ``root``, masks that cannot be made; images are not decoded. Counts the keys not in the
    item format.
    """
    options = ItemOptions(JobOptions(store_images=store_images, validation=validation,
                                     root=fspath_or_none(root)))
    source = ItemSource(dataset, False, None, validation != "off")
    report = ValidationReport(source.total)
    for _, item, duplicate, _ in source.tasks():
        mask_warnings: list[str] = []
        try:
            warnings = items.check(item, options, duplicate)
            checked = item
            if items.gives_masks(item):
                from . import item_masks  # numpy: only for items with masks

                checked = item_masks.make(item, _given_size(item), items.mask_reader(options),
                                          strict=validation == "strict",
                                          warnings=mask_warnings)
            encode_example(checked, ImageFields(None, 1, 1))  # the encoder's own type checks
            items.check_source(item, options)
        except TFRecordLiteError as exc:
            report.failures.append(failure_copy(item, exc))
            reason = items.failure_reason(exc)
            report.failed_by_reason[reason] = report.failed_by_reason.get(reason, 0) + 1
            continue
        if warnings:
            report.warnings.append(items.describe(item, warnings))
        report.warnings += mask_warnings
    report.unknown_keys = source.unknown_keys.as_dict()
    return report


def _given_size(item: dict[str, Any]) -> Frame | None:
    """The image's size as the item gives it, if it does (the masks' frame)."""
    from .masks import Frame

    height, width = item.get("height"), item.get("width")
    if type(height) is int and type(width) is int and height > 0 and width > 0:
        return Frame(height, width)
    return None
