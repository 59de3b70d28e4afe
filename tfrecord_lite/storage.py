"""Where files live: local paths, or fsspec URLs (``s3://``, ``gs://``, ``memory://``, ...).

Local paths need nothing more; a URL needs the ``fsspec`` package and the one for its
scheme: ``pip install fsspec s3fs`` for ``s3://``, ``pip install fsspec gcsfs`` for ``gs://``.

``Folder`` is the output directory of a job. A shard is written to a local temporary
file first and then published whole: renamed in a local folder, uploaded in one piece to
an object store (where an object appears only when its upload is complete). So no
file under a final shard name is ever partial, local or not.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO, Any, Callable

from . import confined
from .errors import StorageError as StorageError  # defined in errors, importable here
from .errors import TFRecordLiteError


def is_url(path: str) -> bool:
    """``scheme://...`` (but not a Windows drive path)."""
    head, sep, _ = path.partition("://")
    return bool(sep) and len(head) > 1 and head.replace("+", "").replace("-", "").isalnum()


def _is_foreign(exc: BaseException) -> bool:
    """Whether an exception comes from a third-party library (a filesystem's client),
    rather than from Python itself (a bug of ours, or an ``OSError`` callers handle) or
    from this package."""
    if isinstance(exc, (OSError, TFRecordLiteError, MemoryError)):
        return False
    module = type(exc).__module__.partition(".")[0]
    return module not in ("builtins", __name__.partition(".")[0])


class NoCredentialsError(PermissionError):
    """An object store's client found no credentials to sign a request with: a matter of
    the machine's setup (environment variables, a profile), not of one file."""


def remote_error(url: str, exc: BaseException) -> OSError:
    """The ``OSError`` for a filesystem library's exception about ``url``: a
    ``PermissionError`` "no credentials for URL" when the library found none to sign
    with, else an ``OSError`` naming the URL and the library's error."""
    name = type(exc).__name__
    detail = str(exc) or name
    if "Credentials" in name:
        return NoCredentialsError(f"no credentials for {url} ({detail})")
    return OSError(f"{url}: {name}: {detail}")


@contextlib.contextmanager
def foreign_errors(url: str) -> Iterator[None]:
    """Turn a third-party filesystem exception raised in the block into an ``OSError``
    naming ``url`` (see ``remote_error``), chained to it. ``OSError``, this package's
    errors, Python's own exceptions (a bug surfaces as itself) and ``KeyboardInterrupt``,
    ``SystemExit``, ``MemoryError`` pass unchanged."""
    try:
        yield
    except Exception as exc:
        if not _is_foreign(exc):
            raise
        raise remote_error(url, exc) from exc


class _RemoteFile:
    """An fsspec file whose reads, seeks and close map the filesystem library's
    exceptions as ``foreign_errors`` does (an object store reads lazily, so a read can
    fail long after the open)."""

    def __init__(self, f: Any, url: str) -> None:
        self._f = f
        self._url = url

    def read(self, size: int = -1) -> bytes:
        with foreign_errors(self._url):
            data: bytes = self._f.read(size)
            return data

    def readinto(self, buffer: Any) -> int:
        with foreign_errors(self._url):
            return int(self._f.readinto(buffer))

    def readline(self, size: int = -1) -> bytes:
        with foreign_errors(self._url):
            line: bytes = self._f.readline(size)
            return line

    def __iter__(self) -> Iterator[bytes]:
        with foreign_errors(self._url):
            yield from self._f

    def seek(self, offset: int, whence: int = 0) -> int:
        with foreign_errors(self._url):
            return int(self._f.seek(offset, whence))

    def close(self) -> None:
        with foreign_errors(self._url):
            self._f.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _RemoteFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError:
        raise StorageError("URLs need fsspec: pip install fsspec s3fs (for s3://), "
                           "pip install fsspec gcsfs (for gs://), pip install fsspec (for "
                           "memory:// and others)") from None
    return fsspec


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of a URL and the path within it."""
    fsspec = _fsspec()
    try:
        with foreign_errors(url):
            return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        more = (" (http:// and https:// URLs need fsspec's http support: pip install fsspec "
                "aiohttp)" if url.startswith(("http://", "https://")) else "")
        raise StorageError(f"{url}: {exc}{more}") from exc


def open_read(path: str, buffering: int = -1) -> IO[bytes]:
    """Open a local path (with this buffer size) or a URL for reading bytes."""
    if not is_url(path):
        return open(path, "rb", buffering=buffering)
    fs, inner = filesystem(path)
    with foreign_errors(path):
        f: IO[bytes] = _RemoteFile(fs.open(inner, "rb"), path)  # type: ignore[assignment]
    return f


def open_input(path: str, root: str | None = None) -> IO[bytes]:
    """Open a file the tool reads (an image, a label or annotation file, a dataset, a label
    map): a local path or a URL, for reading bytes. Every input file goes through here.

    A local path must name a regular file: it is opened without blocking (a FIFO would
    wait for a writer forever) and refused unless the descriptor opened is a regular file
    (a device such as ``/dev/zero`` never ends, a directory has no bytes). With a
    ``root``, a relative path is read from it, and a path that leads outside it (``..``,
    an absolute path elsewhere, a symbolic link out) is refused in the same step as the
    open (``confined``); a URL under a URL root may not leave it by ``..``.

    Raises:
        OSError: ``EXDEV`` outside the root, no such file, not a regular file, or
            unreadable; ``confined.reason`` and ``confined.describe`` say it briefly.
        StorageError: a URL whose scheme's package is not installed.
        ValueError: a path that no file can have (a NUL byte).
    """
    if is_url(path) or (root is not None and is_url(root)):
        return open_read(confine_url(path, root))
    return os.fdopen(confined.open_file(path, root), "rb")


def confine_url(path: str, root: str | None) -> str:
    """Where a path under a root leads when either is a URL: ``root/path`` normalized
    (``a/../b`` -> ``b``); a URL root has no links, only ``..`` to resolve.

    Raises:
        OSError: ``EXDEV``, the path leads outside the root.
    """
    if root is None:
        return path
    base = root.rstrip("/")
    real = join_url(path, "") if is_url(path) else join_url(base, path)
    if not real.startswith(base + "/"):
        raise OSError(errno.EXDEV, f"{confined.OUTSIDE_ROOT} {root} (resolves to {real})",
                      path)
    return real


def is_file(path: str, strict: bool = False) -> bool:
    """Whether a local path or a URL names an existing file.

    Args:
        strict: for a URL, raise instead of returning False when nothing is there or
            it cannot be reached (``FileNotFoundError``, with the cause the URL's
            filesystem chained to it, such as a connection error; ``OSError``).
    """
    if not is_url(path):
        return os.path.isfile(path)
    fs, inner = filesystem(path)
    with foreign_errors(path):
        if not strict:
            return bool(fs.isfile(inner))
        return fs.info(inner).get("type") == "file"


def size(path: str) -> int:
    """The size in bytes of a local file or a URL's object."""
    if not is_url(path):
        return os.path.getsize(path)
    fs, inner = filesystem(path)
    with foreign_errors(path):
        return int(fs.size(inner))


def split(path: str) -> tuple[str, str]:
    """(directory, name) of a local path or a URL."""
    if is_url(path):
        directory, _, name = path.rstrip("/").rpartition("/")
        return directory, name
    return os.path.dirname(os.path.abspath(path)), os.path.basename(path)


def expand(paths: list[str]) -> list[str]:
    """The paths, with each pattern (``*``, ``?``, ``[``) replaced by the files it matches,
    sorted: URLs always (no shell expands them), local paths when no file has the very
    name (a quoted pattern, or a shell that does not expand). A pattern that matches
    nothing is kept, so that the error names it."""
    out: list[str] = []
    for path in paths:
        if not any(c in path for c in "*?["):
            out.append(path)
        elif is_url(path):
            fs, inner = filesystem(path)
            with foreign_errors(path):
                matches = sorted(fs.glob(inner))
            out += [fs.unstrip_protocol(m) for m in matches] or [path]
        elif not os.path.exists(path):
            out += sorted(glob.glob(path)) or [path]
        else:
            out.append(path)
    return out


def expand_files(pattern: str) -> tuple[list[str], list[str]]:
    """What the readers take of one path or pattern given: ``(paths, folders)``, the
    paths it names (as :func:`expand`; a name without wildcards is kept whether or not
    it exists) less the local folders a wildcard matched, which come second (``out/*``
    also matches the folders of other datasets, ``out/coco``: the caller notes them).

    Raises:
        FileNotFoundError: a wildcard that matches nothing.
        IsADirectoryError: a name without wildcards that is a local folder (the message
            says how to give its files).
    """
    paths = expand([pattern])
    wildcard = any(c in pattern for c in "*?[")
    if wildcard and paths == [pattern] and not is_file(pattern):
        raise FileNotFoundError(f"{pattern}: no file matches this pattern")
    folders = [p for p in paths if not is_url(p) and os.path.isdir(p)]
    if folders and not wildcard:
        where = pattern.rstrip("/" + os.sep) or pattern
        raise IsADirectoryError(f"{pattern} is a directory: give its files, e.g. {where}/* "
                                f"or {where}/PREFIX-*")
    return [p for p in paths if p not in folders], folders


def read_bytes(path: str, limit: int | None = None) -> bytes:
    """The whole content of a URL (at most ``limit`` bytes, else ``OSError(EFBIG)``)."""
    fs, inner = filesystem(path)
    with foreign_errors(path):
        if limit is not None:
            size = fs.size(inner)
            if size is not None and size > limit:
                raise OSError(errno.EFBIG, f"{size:,} bytes", path)
        data: bytes = fs.cat_file(inner)
    return data


# A temporary file: ``.{name}.tmp-{pid}`` (``Folder.temp_path``), and from the Beam
# runner the same with ``-{hex}`` added.
_TEMP = re.compile(r"\.(?P<name>.+)\.tmp-[0-9]+(?:-[0-9a-f]+)?")


def temp_target(file_name: str) -> str | None:
    """The name a temporary file (``Folder.temp_path``) is written for, or None when
    ``file_name`` is not a temporary file's."""
    match = _TEMP.fullmatch(file_name)
    return None if match is None else match["name"]


def join_url(base: str, name: str) -> str:
    """``name`` under the URL ``base``, normalized (``a/../b`` -> ``b``)."""
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{posixpath.normpath(posixpath.join(rest, name) if name else rest)}"


class Folder:
    """An output directory on the local file system; a context manager that releases
    what the folder holds (``close``) when the block ends.

    ``durable``: each file is flushed to the disk before it gets its final name, and the
    name itself right after, so that a power failure cannot leave a partial file under a
    final name (a killed process never can, durable or not).
    """

    def __init__(self, path: str, durable: bool = False) -> None:
        self.path = path
        self.durable = durable

    def __str__(self) -> str:
        return self.path

    def join(self, name: str) -> str:
        return os.path.join(self.path, name)

    def location(self, name: str) -> str:
        """How to name a file of the folder to people: a path, or a URL."""
        return self.join(name)

    def makedirs(self) -> None:
        os.makedirs(self.path, exist_ok=True)

    def temp_path(self, name: str) -> str:
        """Where to write ``name`` before it is published: hidden, beside it
        (``.{name}.tmp-{pid}``; see ``temp_target``)."""
        return os.path.join(self.path, f".{name}.tmp-{os.getpid()}")

    def publish(self, temp: str, name: str) -> None:
        """Give a complete temporary file its final name, in one step (when durable: its
        bytes reach the disk before the name does, and the name before this returns)."""
        if self.durable:
            fsync(temp)
        os.replace(temp, self.join(name))
        if self.durable:
            fsync(self.path, directory=True)

    def rename(self, name: str, new_name: str) -> None:
        """Give a file of the folder another name, in one step, replacing a file of that
        name (the directory's entries reach the disk at ``sync_names``)."""
        os.replace(self.join(name), self.join(new_name))

    def scratch(self) -> IO[bytes]:
        """A temporary file without a name (gone with the process, however it ends),
        for a file written piece by piece before it is published (``publish_from``)."""
        return tempfile.TemporaryFile(dir=self.path)

    def publish_from(self, f: IO[bytes], name: str) -> None:
        """Publish the content of ``f`` (from its start) as ``name``, in one step: copied
        to the temporary name of ``name``, then published."""
        temp = self.temp_path(name)
        try:
            f.seek(0)
            with open(temp, "wb") as copy:
                shutil.copyfileobj(f, copy, 1 << 20)
            self.publish(temp, name)
        except BaseException:
            remove_quietly(temp)
            raise

    def sync_names(self) -> None:
        """When durable: flush the directory's entries (names given by ``rename``)."""
        if self.durable:
            fsync(self.path, directory=True)

    def size(self, name: str) -> int:
        return size(self.location(name))

    def sha256(self, name: str) -> str:
        return file_sha256(self.location(name))

    def read(self, name: str) -> bytes | None:
        """A file's bytes; None when there is no such file."""
        try:
            with open(self.join(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes) -> None:
        """Write a small file whole: under a temporary name, then renamed."""
        temp = self.temp_path(name)
        try:
            with open(temp, "wb") as f:
                f.write(data)
            self.publish(temp, name)
        except BaseException:
            remove_quietly(temp)
            raise

    def names(self, prefix: str) -> list[str]:
        """Names in the folder that start with ``prefix``."""
        try:
            return sorted(n for n in os.listdir(self.path) if n.startswith(prefix))
        except FileNotFoundError:
            return []

    def remove(self, name: str) -> None:
        try:
            os.remove(self.join(name))
        except FileNotFoundError:
            pass

    def remove_stale_temps(self, owned: Callable[[str], bool]) -> None:
        """Remove the temporary files of the names for which ``owned(name)`` is true,
        left by a killed run (read by ``temp_target``; no other file is touched)."""
        for file in self.names("."):
            target = temp_target(file)
            if target is not None and owned(target):
                remove_quietly(self.join(file))

    def close(self) -> None:
        """Release what the folder holds (a remote folder's local temporary files)."""

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteFolder(Folder):
    """An output "directory" that is an fsspec URL (an object store prefix, ...).

    Shards are written to a local temporary folder and uploaded whole.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url.rstrip("/"))
        self.fs, self.inner = filesystem(self.path)
        self._local = tempfile.mkdtemp(prefix="tfrecord-lite-")

    def join(self, name: str) -> str:
        return f"{self.inner}/{name}"

    def location(self, name: str) -> str:
        return f"{self.path}/{name}"

    def makedirs(self) -> None:
        with foreign_errors(self.path):
            self.fs.makedirs(self.inner, exist_ok=True)

    def temp_path(self, name: str) -> str:
        return os.path.join(self._local, name)

    def scratch(self) -> IO[bytes]:
        return tempfile.TemporaryFile(dir=self._local)

    def publish(self, temp: str, name: str) -> None:
        with foreign_errors(self.location(name)):
            self.fs.put_file(temp, self.join(name))
        remove_quietly(temp)

    def rename(self, name: str, new_name: str) -> None:
        """A server-side copy, then the old object is deleted (``fs.mv``): the new
        object appears whole; an interruption between the two leaves both."""
        with foreign_errors(self.location(new_name)):
            self.fs.mv(self.join(name), self.join(new_name))

    def sync_names(self) -> None:
        pass  # an object is durable once written

    def read(self, name: str) -> bytes | None:
        try:
            with foreign_errors(self.location(name)):
                data: bytes = self.fs.cat_file(self.join(name))
        except FileNotFoundError:
            return None
        return data

    def write(self, name: str, data: bytes) -> None:
        with foreign_errors(self.location(name)):
            self.fs.pipe_file(self.join(name), data)  # one object, whole or not at all

    def names(self, prefix: str) -> list[str]:
        try:
            with foreign_errors(self.path):
                found = self.fs.ls(self.inner, detail=False)
        except FileNotFoundError:
            return []
        names = (posixpath.basename(str(p).rstrip("/")) for p in found)
        return sorted(n for n in names if n.startswith(prefix))

    def remove(self, name: str) -> None:
        try:
            with foreign_errors(self.location(name)):
                self.fs.rm_file(self.join(name))
        except FileNotFoundError:
            pass

    def remove_stale_temps(self, owned: Callable[[str], bool]) -> None:
        pass  # temporary files are local, in a folder of this run's own

    def close(self) -> None:
        shutil.rmtree(self._local, ignore_errors=True)


def folder(path: str, durable: bool = False) -> Folder:
    """The output folder for a local path or a URL, to use as ``with folder(p) as out:``
    (an object store's uploads are durable once complete, so ``durable`` concerns local
    folders).

    Raises:
        StorageError: a URL whose scheme's package is not installed.
    """
    return RemoteFolder(path) if is_url(path) else Folder(path, durable)


def fsync(path: str, directory: bool = False) -> None:
    """Flush a file (or a directory's entries) to the disk.

    A directory cannot be opened where the system has no ``O_DIRECTORY`` (Windows); its
    entries are then left to the file system.
    """
    if directory and not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes as stored (compressed or not), read in 1 MiB pieces;
    a local path or a URL."""
    with open_read(os.fspath(path)) as f:
        return stream_sha256(f)


def stream_sha256(f: IO[bytes]) -> str:
    """The sha256 of what is left to read in a binary file object, in 1 MiB pieces."""
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()
