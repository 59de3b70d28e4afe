"""One item -> one serialized Example: read the image, apply the policy, encode.

The policy, per item:

* ``encoded`` given: stored as it is; ``height``, ``width``, ``format``,
  ``colorspace`` and ``channels`` must be given with it.
* ``store_images=False``: no ``image/encoded``; height and width from the item, or
  from the image file's header when missing (the file is not opened when both are
  given).
* otherwise the file is read, checked and, unless a 3-channel JPEG, converted
  (see ``images``).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import confined, images, storage
from .coerce import as_bytes, as_int, item_label
from .dataset import FailedItem
from .errors import (
    ExampleError,
    ImageError,
    MaskError,
    TFRecordLiteError,
    ValidationError,
    reason,
)
from .example import ImageFields, encode_example
from .options import JobOptions
from .schema import LABEL_IMAGE, OBJECT_MASK
from .validate import Problem, check_item

if TYPE_CHECKING:
    from .item_masks import Reader
    from .masks import Frame

logger = logging.getLogger(__name__)

GIVEN_WITH_ENCODED = ("height", "width", "format", "colorspace", "channels")


MAX_FILE_BYTES = 256 << 20


@dataclass(frozen=True)
class ItemOptions:
    """How each item becomes a record: the job's options, and what follows from them.

    Attributes:
        job: the job's options (``store_images``, ``quality``, ``max_side``,
            ``decode_check``, ``validation``, ``root``); see ``JobOptions``.
        max_file_bytes: larger image files fail their item unread.
        image: how images are stored, derived from ``job``: quality, downscaling, the
            decode check, and what it does with JPEG data that does not decode in full
            (fails the item under strict validation, a warning otherwise).
    """

    job: JobOptions = JobOptions()
    max_file_bytes: int = MAX_FILE_BYTES
    image: images.ImageOptions = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        job = self.job
        object.__setattr__(self, "image", images.ImageOptions(
            job.quality, job.max_side, job.decode_check,
            corrupt_data="fail" if job.validation == "strict" else "warn"))

    @property
    def store_images(self) -> bool:
        return self.job.store_images

    @property
    def validation(self) -> str:
        return self.job.validation

    @property
    def root(self) -> str | None:
        return self.job.root


def _is_url(filename: str, root: str | None) -> bool:
    return storage.is_url(filename) or (root is not None and storage.is_url(root))


def location(filename: str, root: str | None) -> str:
    """How messages name an item's image file: the path under the root (a URL resolved),
    or the filename as given."""
    if root is None:
        return filename
    if _is_url(filename, root):
        base = root.rstrip("/")
        return (storage.join_url(filename, "") if storage.is_url(filename)
                else storage.join_url(base, filename))
    return os.path.join(root, filename)


def _open_error(filename: str, root: str | None, exc: OSError) -> ImageError:
    """The item's error for a file that cannot be opened (see ``confined.open_file``)."""
    why = confined.reason(exc)
    if why == "outside root":
        return ImageError(f"{filename}: {confined.describe(exc)}; refused", why)
    where = location(filename, root)
    if why == "missing":
        return ImageError(f"{where}: file not found", why)
    if confined.describe(exc).startswith("not a regular file"):
        return ImageError(f"{where}: {confined.describe(exc)}; an image must be a file", why)
    return ImageError(f"{where}: cannot read: {confined.describe(exc)}", why)


def _open_fd(filename: str, root: str | None) -> int:
    """A descriptor of a local image file: a regular file, opened without blocking, under
    the root when one is given (``confined``).

    Raises:
        ImageError: outside the root ("outside root"), no file there ("missing"), not a
            regular file or unreadable ("unreadable").
    """
    try:
        return confined.open_file(filename, root)
    except OSError as exc:
        raise _open_error(filename, root, exc) from exc
    except ValueError as exc:  # a NUL byte, a lone surrogate: no file can have that name
        raise ImageError(f"{filename!r}: not a possible file name ({exc})",
                         "unreadable") from exc


def _check_inside(filename: str, root: str) -> None:
    """A local image path that is named but not read: refused when it leads outside the
    root."""
    try:
        confined.check_inside(filename, root)
    except OSError as exc:
        raise _open_error(filename, root, exc) from exc


def _confined_url(filename: str, root: str | None) -> str:
    """The URL of an item's image (a URL, or a path under a URL root), inside the root."""
    try:
        return storage.confine_url(filename, root)
    except OSError as exc:
        raise _open_error(filename, root, exc) from exc


def _read_url(path: str, limit: int) -> bytes:
    try:
        return storage.read_bytes(path, limit)
    except storage.StorageError as exc:  # fsspec, or the package for the scheme, missing
        raise ImageError(f"{path}: cannot read: {exc}", "unreadable") from exc
    except FileNotFoundError as exc:
        raise _url_error(path, exc) from exc
    except OSError as exc:
        if storage.is_url(path) and exc.errno is None:  # a connection error
            raise _url_error(path, exc) from exc
        if exc.errno == errno.EFBIG:
            raise ImageError(f"{path}: {exc.strerror} is larger than the limit of {limit:,} "
                             "bytes for an image file", "too large") from exc
        raise ImageError(f"{path}: cannot read: {exc}", "unreadable") from exc


def _url_error(url: str, exc: OSError) -> ImageError:
    """What happened to an image URL that could not be read: the server not reached
    ("unreachable", with the cause fsspec chained), or no file there ("missing")."""
    cause = exc if not isinstance(exc, FileNotFoundError) else exc.__cause__ or exc.__context__
    if cause is not None:
        return ImageError(f"{url}: the URL could not be read: {reason(cause)}", "unreachable")
    return ImageError(f"{url}: no file at this URL", "missing")


def _too_large(path: str, limit: int, size: int | None = None) -> ImageError:
    what = f"{size:,} bytes is larger" if size is not None else "larger"
    return ImageError(f"{path}: {what} than the limit of {limit:,} bytes for an image file",
                      "too large")


def _read_file(filename: str, root: str | None, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of an item's image file (a local path or a URL), at most ``limit`` of
    them. A local path is opened in one step with every check (``confined``): a regular
    file, without blocking, under the root.

    Raises:
        ImageError: outside the root, missing, not a regular file, unreadable or larger
            than ``limit``.
    """
    if _is_url(filename, root):
        return _read_url(_confined_url(filename, root), limit)
    fd = _open_fd(filename, root)
    path = location(filename, root)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise _too_large(path, limit, size)
        chunk = os.read(fd, size + 1)
        if len(chunk) <= size:
            return chunk  # a regular file's short read is its end: the whole file
        chunks, total = [chunk], len(chunk)
        while chunk:  # it grew while being read
            if total > limit:
                raise _too_large(path, limit)
            chunk = os.read(fd, 1 << 20)
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}", "unreadable") from exc
    finally:
        os.close(fd)


def _read_size(filename: str, root: str | None) -> tuple[int, int, str]:
    """``(width, height, format)`` from an item's image file header."""
    url = _is_url(filename, root)
    if url:
        path, root = _confined_url(filename, root), None
    else:
        path = filename
    try:
        return images.read_size_from_file(path, root)
    except OSError as exc:
        if url and (isinstance(exc, FileNotFoundError) or exc.errno is None):
            raise _url_error(path, exc) from exc
        raise _open_error(filename, root, exc) from exc
    except ValueError as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"{filename!r}: not a possible file name ({exc})",
                         "unreadable") from exc


def _image_fields(item: Mapping[str, Any], options: ItemOptions,
                  warnings: list[str] | None = None) -> tuple[ImageFields, tuple[Any, Any]]:
    """The image's fields, and ``(width, height)`` of the image file (of the stored
    image's unless ``max_side`` downscaled it)."""
    if item.get("encoded") is not None:
        check_source(item, options)
        if not isinstance(item["encoded"], (bytes, bytearray, memoryview)):
            raise ExampleError(f"{item_label(item)}: encoded: expected bytes, got "
                               f"{type(item['encoded']).__name__}")
        fields = ImageFields(bytes(item["encoded"]), item["height"], item["width"],
                             item["format"], item["colorspace"], item["channels"])
        return fields, (fields.width, fields.height)
    filename, root = str(item["filename"]), options.root
    if not options.store_images:
        height, width = item.get("height"), item.get("width")
        fmt = item.get("format")
        if height is None or width is None:
            width, height, fmt = _read_size(filename, root)
        elif root is not None and not _is_url(filename, root):
            _check_inside(filename, root)
        elif root is not None:
            _confined_url(filename, root)
        return ImageFields(None, height, width, fmt or "", item.get("colorspace", "RGB"),
                           item.get("channels", 3)), (width, height)
    stored = images.prepare(_read_file(filename, root, options.max_file_bytes), options.image,
                            where=location(filename, root))
    if stored.warnings and warnings is not None:
        warnings.extend(f"{item_label(item)}: {w}" for w in stored.warnings)
    return ImageFields(stored.data, stored.height, stored.width, stored.format,
                       stored.colorspace, stored.channels), stored.source_size


def _frame(item: Mapping[str, Any], fields: ImageFields, source: tuple[Any, Any]) -> Frame:
    """The sizes the item's masks are made at: of the image file, and stored.

    Raises:
        ExampleError: a height or width (given in the item) that is not a size.
    """
    from .masks import Frame

    sizes = []
    for key, value in (("width", source[0]), ("height", source[1]), ("width", fields.width),
                       ("height", fields.height)):
        try:
            size = as_int(value)
        except (TypeError, ValueError) as exc:
            raise ExampleError(f"{item_label(item)}: {key}: {exc}") from exc
        if size < 1:
            raise ExampleError(f"{item_label(item)}: {key}: {size}; masks need an image of "
                               "at least 1x1 pixels")
        sizes.append(size)
    return Frame(sizes[1], sizes[0], sizes[3], sizes[2])


def gives_masks(item: Mapping[str, Any]) -> bool:
    """Whether the item gives object masks or a label image (see ``item_masks``, which
    is imported, with numpy, only for the items that do)."""
    group, name = OBJECT_MASK
    obj = item.get(group)
    return ((isinstance(obj, Mapping) and obj.get(name) is not None)
            or item.get(LABEL_IMAGE) is not None)


def mask_reader(options: ItemOptions) -> Reader:
    """Reads the mask and label image files an item names, as its image is read:
    a relative path from the current directory, or from the root (and not outside it)."""
    def read(path: str) -> bytes:
        return _read_file(path, options.root, options.max_file_bytes)
    return read


def check(item: Any, options: ItemOptions = ItemOptions(),
          duplicate: Problem | None = None) -> list[Problem]:
    """The problems of an item that stop it from being written in this mode.

    Returns the warnings (problems lenient mode writes anyway); raises for the rest.

    Raises:
        ValidationError: strict mode, and the item has a problem.
        ExampleError: not a dict; ``filename`` or ``id`` missing, a list or dict, not
            writable as UTF-8 (a lone surrogate), a filename with a NUL byte; or a value
            that cannot be encoded (such as a label that is not an integer).
    """
    if isinstance(item, FailedItem):
        raise ExampleError(str(item))
    if not isinstance(item, Mapping):
        raise ExampleError(f"an item must be a dict, got {type(item).__name__}")
    filename, ident = item.get("filename"), item.get("id")
    if not (type(filename) is str and filename.isascii() and "\0" not in filename
            and (type(ident) is int or (type(ident) is str and ident.isascii()))):
        for key in ("filename", "id"):  # not the usual ASCII text: look closer
            _check_name(item, key)
    if options.validation == "off":
        return []
    problems = check_item(item)
    if duplicate is not None:
        problems.append(duplicate)
    if any(p.fatal for p in problems):  # cannot be written in any mode
        raise ExampleError(describe(item, problems))
    if problems and options.validation == "strict":
        raise ValidationError(describe(item, problems))
    return problems


_NOT_TEXT = (Mapping, list, tuple, set, frozenset)


def _check_name(item: Mapping[str, Any], key: str) -> None:
    """``filename`` or ``id``: given, one value (text, a number, a path), and writable as
    UTF-8; a filename without a NUL byte. Checked before the image is read.

    Raises:
        ExampleError: naming the item and the key.
    """
    value = item.get(key)
    if type(value) is str:
        text = value
    elif type(value) is int:
        return
    elif value is None:
        raise ExampleError(f"{item_label(item)}: {key}: missing (every item needs "
                           "'filename' and 'id')")
    elif isinstance(value, _NOT_TEXT):
        raise ExampleError(f"{item_label(item)}: {key}: expected one "
                           f"{'path' if key == 'filename' else 'text or number'}, got a "
                           f"{type(value).__name__}")
    elif isinstance(value, (bytes, bytearray)):
        return
    else:
        text = str(value)
    if not text.isascii():
        try:
            as_bytes(text)
        except ValueError as exc:  # a lone surrogate
            raise ExampleError(f"{item_label(item)}: {key}: {exc}") from None
    if key == "filename" and "\0" in text:
        raise ExampleError(f"{item_label(item)}: filename: {text!r} holds a NUL byte, "
                           "which no file name can hold")


def describe(item: Any, problems: list[Problem]) -> str:
    """One line naming the item and each problem with its key path."""
    return f"{item_label(item)}: " + "; ".join(map(str, problems))


def check_source(item: Mapping[str, Any], options: ItemOptions = ItemOptions()) -> None:
    """Without reading it: is the image where the item says (and inside the root)?

    Raises:
        ExampleError: ``encoded`` without the fields that must come with it.
        ImageError: the path leads outside the root, no file is there, or what is
            there is not a regular file (a FIFO, a device, a directory).
    """
    if item.get("encoded") is not None:
        missing = [k for k in GIVEN_WITH_ENCODED if item.get(k) is None]
        if missing:
            raise ExampleError(
                f"{item_label(item)}: 'encoded' is given, so {', '.join(missing)} must be "
                f"given too ({', '.join(GIVEN_WITH_ENCODED)})")
        return
    filename, root = str(item["filename"]), options.root
    opened = options.store_images or item.get("height") is None or item.get("width") is None
    if not _is_url(filename, root):
        if opened:
            os.close(_open_fd(filename, root))
        elif root is not None:
            _check_inside(filename, root)
        return
    path = _confined_url(filename, root)
    if opened:
        try:
            found = storage.is_file(path, strict=True)
        except OSError as exc:  # FileNotFoundError too
            raise _url_error(path, exc) from exc
        if not found:
            raise ImageError(f"{path}: not a file (a folder?)", "unreadable")


def encode_item(item: Any, options: ItemOptions = ItemOptions(),
                warnings: list[str] | None = None, duplicate: Problem | None = None) -> bytes:
    """Validate and serialize one item, image included.

    Args:
        item: the item dict (docs/item-format.md).
        options: how images are stored and items checked.
        warnings: lenient mode appends its warnings here (else they are logged).
        duplicate: the problem of an id already used (from ``validate.IdTracker``).
    Raises:
        ValidationError: the annotations fail validation (see ``validate``).
        ExampleError: a field is missing or has the wrong type, or the record would be
            longer than ``max_record_size``.
        MaskError: (an ExampleError) a mask that cannot be made under strict validation,
            or a label image that cannot be stored (see ``item_masks``).
        ImageError: the image (or a mask or label image file) is missing, empty,
            truncated, corrupt or not an image.
    """
    problems = check(item, options, duplicate)
    image_warnings: list[str] = []
    fields, source = _image_fields(item, options, image_warnings)
    if gives_masks(item):
        from . import item_masks

        item = item_masks.make(item, _frame(item, fields, source), mask_reader(options),
                               strict=options.validation == "strict",
                               warnings=image_warnings)
    data = encode_example(item, fields)
    limit = options.job.max_record_size
    if len(data) > limit:
        raise ExampleError(
            f"{item_label(item)}: its record would be {len(data):,} bytes, over the "
            f"{limit:,}-byte limit of a record (max_record_size), which readers would "
            "take for a damaged file; store a smaller image (max_side) or less in extra")
    messages = [describe(item, problems)] if problems else []
    messages += image_warnings
    for message in messages:
        if warnings is None:
            logger.warning("%s", message)
        else:
            warnings.append(message)
    return data


def try_encode(item: Any, options: ItemOptions = ItemOptions(),
               duplicate: Problem | None = None
               ) -> tuple[bytes | None, BaseException | None, list[str]]:
    """``encode_item`` with the error returned, not raised: ``(data, error, warnings)``.

    The documented errors of an item (the library's own: ``ValidationError``,
    ``ExampleError``, ``ImageError``) are returned, so that the item is reported as
    failed. Any other exception is a bug: it propagates, with its traceback, and stops
    the job rather than hide among the failed items.
    """
    warnings: list[str] = []
    try:
        return encode_item(item, options, warnings, duplicate), None, warnings
    except TFRecordLiteError as exc:
        return None, exc, warnings


def failure_reason(exc: BaseException) -> str:
    """A short category for the summary of failures."""
    if isinstance(exc, ImageError):
        return exc.reason
    if isinstance(exc, MaskError):
        return f"mask: {exc.reason}"
    if isinstance(exc, ValidationError):
        return "failed validation"
    if isinstance(exc, ExampleError):
        return "invalid item"
    return type(exc).__name__
