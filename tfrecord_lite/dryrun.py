"""A dry run: every item checked as a job would check it, without reading images or
writing anything (``validate_dataset``, ``--validate-only``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import items
from .errors import TFRecordLiteError
from .example import ImageFields, encode_example
from .items import ItemOptions
from .job import ItemSource, failure_copy
from .options import JobOptions, fspath_or_none

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
    ``root``; images are not decoded. Counts the keys not in the item format.
    """
    options = ItemOptions(JobOptions(store_images=store_images, validation=validation,
                                     root=fspath_or_none(root)))
    source = ItemSource(dataset, False, None, validation != "off")
    report = ValidationReport(source.total)
    for _, item, duplicate, _ in source.tasks():
        try:
            warnings = items.check(item, options, duplicate)
            encode_example(item, ImageFields(None, 1, 1))  # the encoder's own type checks
            items.check_source(item, options)
        except TFRecordLiteError as exc:
            report.failures.append(failure_copy(item, exc))
            reason = items.failure_reason(exc)
            report.failed_by_reason[reason] = report.failed_by_reason.get(reason, 0) + 1
            continue
        if warnings:
            report.warnings.append(items.describe(item, warnings))
    report.unknown_keys = source.unknown_keys.as_dict()
    return report
