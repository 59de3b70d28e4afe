"""The command line's entry point: ``python -m tfrecord_lite`` / ``tfrecord-lite``.

Builds the parser from the command modules (each registers its own subcommands) and is
the one place that turns an outcome into an exit status:

* 0: every item was written;
* 1: some items failed (they are listed in ``{output_dir}/{prefix}.failures.json``), or
  a damaged file was read;
* 2: usage error (bad flag, unreadable or malformed dataset file);
* 3: the output could not be written (nothing partial is left under a shard name);
* 70: an internal error, a bug: the traceback is printed, with a line asking to report it;
* 130: interrupted (Ctrl-C); 143: stopped by SIGTERM (``kill``, a service manager), which
  ends the job as Ctrl-C does: the same message, the same clean-up, ``--resume`` then
  finishes it; 141: the output's reader went away (``| head``).

Only the documented errors become statuses 1 to 3 (see ``EXIT_FOR``): the library's own
(``TFRecordLiteError``), a usage mistake, and an input file that cannot be read.

The original tool's flags work unchanged, with or without the ``create`` word::

    python -m tfrecord_lite --dataset_path train.json --prefix train --output_dir out \\
        --shards 10 --threads 5 --shuffle --store_images
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from types import FrameType

from .. import _startup
from .._version import __version__
from ..accelerators import chosen
from ..errors import ImageError, RecordError, TFRecordLiteError, WriteError
from . import convert, create, read
from .common import (
    EXIT_FAILED_ITEMS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PIPE,
    EXIT_TERMINATED,
    EXIT_USAGE,
    EXIT_WRITE,
    CommandParser,
    UsageError,
    interrupted_message,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrecord-lite",
        description="Turn image datasets into TFRecord files of tf.train.Example records, "
                    "without TensorFlow.",
        epilog="Without a command, the arguments are those of 'create' (the original "
               "create_tfrecords.py command line).",
    )
    parser.add_argument("--version", action="store_true",
                        help="print the version, the CRC32C backend and the image decoders, "
                        "then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for command in (create, read, convert):
        command.register(sub)
    return parser


# A user's mistake or a damaged file -> a message and an exit status, never a traceback.
# Anything else is a bug: its traceback is printed, then an internal-error line (70).
EXIT_FOR: tuple[tuple[type[BaseException], int], ...] = (
    (UsageError, EXIT_USAGE),
    (FileNotFoundError, EXIT_USAGE),
    (RecordError, EXIT_FAILED_ITEMS),
    (ImageError, EXIT_FAILED_ITEMS),  # an image in a shard (show) that does not decode
    (WriteError, EXIT_WRITE),
    (TFRecordLiteError, EXIT_USAGE),
    (OSError, EXIT_USAGE),  # an input file that cannot be read (output errors: WriteError)
)


_HANDLED = tuple(kind for kind, _ in EXIT_FOR)


def _message(exc: BaseException) -> str:
    """The error line's text for one of the errors of ``EXIT_FOR``."""
    if isinstance(exc, FileNotFoundError):  # fsspec gives the path as the only argument
        return f"no such file: {exc.filename or (exc.args[0] if exc.args else '')}"
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot read {exc.filename}: {exc.strerror or exc}"
    return str(exc)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread wherever it is, so that the job stops as after
    Ctrl-C (a ``KeyboardInterrupt``): the same clean-up, the same message."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """For the block, SIGTERM raises ``Terminated``; a second SIGTERM during the clean-up
    ends the process at once, as SIGTERM would without this. (Signal handlers belong to
    the main thread: elsewhere, nothing changes.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    given = list(args_list)
    legacy = bool(args_list and args_list[0].startswith("-") and args_list[0] not in (
        "-h", "--help", "--version"))
    if legacy:
        args_list.insert(0, "create")  # the original tool's command line
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse has printed the problem (or the help)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    args.argv = given
    if getattr(args, "store_images", False) is None:
        # The original stores images only with --store_images; the commands store them.
        args.store_images = not legacy
    if args.version:
        print(f"tfrecord-lite {__version__} ({chosen().report()})")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    try:
        _startup.release()  # from here Ctrl-C is a KeyboardInterrupt, cleaned up below
        with _sigterm_as_interrupt():
            status: int = args.run(args)
        return status
    except BrokenPipeError:  # the output's reader stopped (`| head`): nothing to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit's flush is quiet too
        return EXIT_PIPE
    except _HANDLED as exc:
        print(f"tfrecord-lite: error: {_message(exc)}", file=sys.stderr)
        return next(code for kind, code in EXIT_FOR if isinstance(exc, kind))
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        print(f"tfrecord-lite: {interrupted_message(args)}", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except Exception as exc:  # a bug: shown whole, never as a user's mistake
        traceback.print_exc()
        print(f"tfrecord-lite: internal error: {type(exc).__name__}: {exc}; please report "
              "it, with the traceback above", file=sys.stderr)
        return EXIT_INTERNAL
