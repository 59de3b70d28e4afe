"""Opening a local input file in one step: a regular file, never waited on, and, under a
root, never outside it.

``open_file(path, root)`` returns a descriptor of what the path names, or raises an
``OSError`` whose ``strerror`` says why (``reason`` turns it into a short category):

* without blocking: a FIFO is opened with ``O_NONBLOCK`` (it would otherwise wait for a
  writer forever) and then refused, like a device, a socket or a directory, by
  ``fstat`` of the descriptor opened, not of a name looked at before;
* with a root, relative paths are read from it, and the check that the path stays inside
  is the open itself, so that no folder swapped for a symbolic link between a check and
  the open can lead out. On Linux: ``openat2`` with ``RESOLVE_BENEATH`` from a
  descriptor of the root (one system call). Elsewhere, and for what ``openat2`` refuses
  that is allowed (an absolute link to a place inside the root): a walk from the root's
  descriptor, one component at a time, each opened with ``O_NOFOLLOW``; a link met on
  the way is read and followed by the walk itself, and ``..`` never climbs above the
  root. Where the system has no ``dir_fd`` (Windows), the path is resolved with
  ``realpath``, checked, and opened (a portable fallback, not proof against a swap).

An escape fails with ``errno.EXDEV`` ("outside the dataset root"); anything that goes
wrong during the walk (a component renamed or removed meanwhile: ``ENOENT``,
``EINVAL``) is an ``OSError`` of that one path, for the caller to fail one item with.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections import deque
from typing import Any

# How the path is resolved under a root: the fastest the system offers ("auto"), or one
# of these (tests pick each in turn).
RESOLVERS = ("auto", "openat2", "walk", "realpath")

_MAX_LINKS = 40  # as Linux: more symbolic links than this on one path is a loop
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | _NONBLOCK | _CLOEXEC | getattr(os, "O_BINARY", 0)
# A folder on the way is only passed through: O_PATH (Linux) needs no read permission.
_DIR_FLAGS = (getattr(os, "O_PATH", 0) or os.O_RDONLY) | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC

# What a path names when it is not a regular file.
_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"))

OUTSIDE_ROOT = "outside the dataset root"
# Whether paths can be opened and links read relative to a folder's descriptor (POSIX).
_HAS_DIR_FD = os.open in os.supports_dir_fd and os.readlink in os.supports_dir_fd


def open_file(path: str, root: str | None = None, resolver: str = "auto") -> int:
    """A read-only descriptor of the regular file ``path`` names (relative to ``root``
    when given, and then never outside it), opened without blocking.

    Args:
        path: the file; with a root, relative paths are read from the root, and absolute
            ones must lead inside it.
        root: the dataset root, or None for no confinement.
        resolver: see ``RESOLVERS``.
    Returns:
        The descriptor (the caller closes it), its position at the start.
    Raises:
        OSError: ``EXDEV`` outside the root; ``ENOENT``/``ENOTDIR`` no such file;
            ``EISDIR`` a directory; ``EINVAL`` not a regular file (a FIFO, a device, a
            socket) or a path that changed while it was opened; ``ELOOP`` too many
            symbolic links; any other error of opening. ``strerror`` says which.
        ValueError: ``resolver`` is not one of ``RESOLVERS``; or the path holds a NUL
            byte.
    """
    if resolver not in RESOLVERS:
        raise ValueError(f"resolver must be one of {', '.join(RESOLVERS)}, not {resolver!r}")
    try:
        fd = os.open(path, _FILE_FLAGS) if root is None else _open_under(path, root, resolver)
    except OSError as exc:
        if exc.errno not in (errno.ENXIO, errno.EOPNOTSUPP):
            raise
        # A socket cannot be opened at all: say what it is (looked at by name, only to
        # word the error).
        try:
            mode = os.stat(path if root is None else os.path.join(root, path)).st_mode
        except OSError:
            raise exc from None
        raise _not_regular(path, mode) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _not_regular(path: str, mode: int) -> OSError:
    kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a file")
    code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
    return OSError(code, f"not a regular file ({kind})", path)


def check_inside(path: str, root: str) -> None:
    """For a path that is named but not opened (a record that stores no image): whether it
    leads inside the root, by its resolved form (what it names at this moment).

    Raises:
        OSError: ``EXDEV``, it leads outside the root.
    """
    base = os.path.realpath(root)
    if _under(os.path.realpath(os.path.join(base, path)), base) is None:
        raise _outside(path, root)


def reason(exc: OSError) -> str:
    """A short category of an ``open_file`` error, for summaries: "outside root",
    "missing" or "unreadable"."""
    if exc.errno == errno.EXDEV:
        return "outside root"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "missing"
    return "unreadable"


def describe(exc: OSError) -> str:
    """What went wrong, in a few words (``strerror`` without the file name)."""
    return exc.strerror or str(exc)


# -- under a root ---------------------------------------------------------------------------

def _outside(path: str, root: str) -> OSError:
    return OSError(errno.EXDEV, f"{OUTSIDE_ROOT} {root}", path)


def _open_under(path: str, root: str, resolver: str) -> int:
    if resolver == "auto":
        resolver = "walk" if _HAS_DIR_FD else "realpath"
        if resolver == "walk" and _openat2_available():
            resolver = "openat2"
    if resolver == "realpath":
        return _open_realpath(path, root)
    if "\0" in path:
        raise ValueError("embedded null byte")
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        relative = _relative(path, root)
        if resolver == "openat2":
            fd = _openat2(root_fd, relative, path)
            if fd is not None:
                return fd
            # refused as an escape, or a rename raced it: the walk decides
        return _walk(root_fd, relative, path, root)
    finally:
        os.close(root_fd)


def _relative(path: str, root: str) -> str:
    """The path to open from the root's descriptor: a relative path as it is; an absolute
    one without the root it starts with (the root as given or as resolved), else the
    part of its resolved form under the resolved root. Only the open decides; this only
    says where to start.

    Raises:
        OSError: ``EXDEV``, an absolute path that does not lead inside the root.
    """
    if not os.path.isabs(path):
        return path
    for base in {os.path.abspath(root), os.path.realpath(root)}:
        inside = _under(path, base)
        if inside is not None:
            return inside
    inside = _under(os.path.realpath(path), os.path.realpath(root))
    if inside is None:
        raise _outside(path, root)
    return inside


def _under(path: str, base: str) -> str | None:
    """``path`` relative to ``base`` when it starts with it (as text), else None."""
    base = base.rstrip(os.sep) + os.sep
    if path == base[:-1]:
        return os.curdir
    return path[len(base):] if path.startswith(base) else None


def _walk(root_fd: int, relative: str, path: str, root: str) -> int:
    """Open ``relative`` from ``root_fd`` one component at a time, following symbolic
    links here rather than in the kernel, so that none leads above the root."""
    parts = deque(p for p in relative.split(os.sep) if p not in ("", os.curdir))
    folders = [root_fd]  # the folders walked through; the root's is the caller's to close
    links = 0
    try:
        while parts:
            name = parts.popleft()
            if name == os.pardir:
                if len(folders) == 1:
                    raise _outside(path, root)
                os.close(folders.pop())
                continue
            last = not parts
            flags = (_FILE_FLAGS if last else _DIR_FLAGS) | _NOFOLLOW
            try:
                fd = os.open(name, flags, dir_fd=folders[-1])
            except OSError as exc:
                target = _link_target(name, folders[-1], exc)
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links",
                                  path) from None
                if os.path.isabs(target):
                    inside = _absolute_link(target, root)
                    if inside is None:
                        raise _outside(path, root) from None
                    for fd in folders[1:]:
                        os.close(fd)
                    del folders[1:]
                    target = inside
                parts.extendleft(reversed([p for p in target.split(os.sep)
                                           if p not in ("", os.curdir)]))
                continue
            if last:
                return fd
            folders.append(fd)
        # Nothing left to open: the path names the root, or a folder above its end ("a/..").
        raise _not_regular(path, stat.S_IFDIR)
    finally:
        for fd in folders[1:]:
            os.close(fd)


def _link_target(name: str, folder: int, error: OSError) -> str:
    """The target of ``name`` when the open of it failed because it is a symbolic link;
    otherwise ``error`` is what stands (a file where a folder should be, no such name,
    ...), or, when the name stopped being a link meanwhile, an error saying so."""
    if error.errno not in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR,
                           getattr(errno, "EFTYPE", errno.ELOOP)):
        raise error
    try:
        return os.readlink(name, dir_fd=folder)
    except OSError as exc:
        if exc.errno == errno.EINVAL and error.errno in (errno.ELOOP, errno.EMLINK):
            # It was a link when opened and is none now: swapped while being opened.
            raise OSError(errno.EINVAL, "changed while being opened", error.filename) from None
        raise error from None


def _absolute_link(target: str, root: str) -> str | None:
    """Where an absolute link's target lies under the root (as given or resolved), or None."""
    for base in {os.path.abspath(root), os.path.realpath(root)}:
        inside = _under(target, base)
        if inside is not None:
            return inside
    return None


def _open_realpath(path: str, root: str) -> int:
    """The portable fallback: resolve, check, open the resolved path (not proof against
    a folder swapped for a link between the check and the open)."""
    check_inside(path, root)
    return os.open(os.path.realpath(os.path.join(os.path.realpath(root), path)), _FILE_FLAGS)


# -- openat2 (Linux 5.6+) ---------------------------------------------------------------------

_SYS_OPENAT2 = 437  # the same number on every architecture of this list (since Linux 5.6)
_OPENAT2_MACHINES = ("x86_64", "amd64", "i386", "i686", "aarch64", "arm64", "armv7l", "armv8l",
                     "ppc64le", "ppc64", "s390x", "riscv64", "loongarch64")
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_openat2_state: list[Any] = []  # [syscall function or None], filled at the first use


def _openat2_available() -> bool:
    return _openat2_function() is not None


def _openat2_function() -> Any:
    if not _openat2_state:
        _openat2_state.append(_load_openat2())
    return _openat2_state[0]


def _load_openat2() -> Any:
    if not sys.platform.startswith("linux") or os.uname().machine not in _OPENAT2_MACHINES:
        return None
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
    except (OSError, AttributeError):
        return None

    class OpenHow(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                    ("resolve", ctypes.c_uint64)]

    syscall.restype = ctypes.c_long

    def openat2(dir_fd: int, path: bytes, flags: int, resolve: int) -> int:
        how = OpenHow(flags, 0, resolve)
        fd = syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dir_fd), ctypes.c_char_p(path),
                     ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        return int(fd) if fd >= 0 else -ctypes.get_errno()

    # Probe once: a kernel without it (or a sandbox that forbids it) says ENOSYS or EPERM.
    probe = openat2(-100, b".", _DIR_FLAGS, _RESOLVE_BENEATH)  # -100: AT_FDCWD
    if probe < 0:
        return None
    os.close(probe)
    return openat2


def _openat2(root_fd: int, relative: str, path: str) -> int | None:
    """``openat2`` beneath ``root_fd``; None when it refuses what the walk may allow (an
    escape, which may be an absolute link inside the root) or a rename raced it."""
    function = _openat2_function()
    if function is None:
        return None
    fd = function(root_fd, os.fsencode(relative), _FILE_FLAGS,
                  _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
    if fd >= 0:
        return int(fd)
    code = -fd
    if code in (errno.EXDEV, errno.EAGAIN, errno.ELOOP, errno.EINTR):
        return None
    raise OSError(code, os.strerror(code), path)
