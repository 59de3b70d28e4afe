"""What every command of the command line shares: exit statuses, ``UsageError``, the
argument types, the output and runner options, and running a job (locally or on Apache
Beam) and reporting it.

The commands (``create``, ``read``, ``convert``) import only this module; ``main`` on top
builds the parser from them and maps exceptions to exit statuses.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import logging
import math
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol

# Modules that need Pillow (the runners, images, preview, the converters' readers) and
# Beam are imported by the commands that use them, so that --help starts fast.
from .. import journal, keys, plural, storage
from ..errors import InterruptedRunError, TFRecordLiteError
from ..options import JobOptions
from ..sharding import check_prefix, failures_name, unpublished_failures_name

# Exit statuses: see ``main``.
EXIT_OK, EXIT_FAILED_ITEMS, EXIT_USAGE, EXIT_WRITE = 0, 1, 2, 3
EXIT_PIPE = 141  # as a process that SIGPIPE ends: 128 + 13
EXIT_INTERRUPTED = 130  # as a process that SIGINT ends: 128 + 2
EXIT_TERMINATED = 143  # as a process that SIGTERM ends: 128 + 15
EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h): a bug
# The job options' defaults, declared once in JobOptions. (The original command line
# does not shuffle by default, and chooses whether to store images from the command word.)
DEFAULT = JobOptions.defaults()
SHOWN_FAILURES = 10


class Problems(Protocol):
    """Failures found outside the items (a converter's ``Problems``): counted, and
    listed as entries of the failures file."""

    def __len__(self) -> int: ...

    def entries(self) -> Iterator[dict[str, Any]]: ...
# Apache Beam from PyPI; the repository's own extra for someone with a clone.
BEAM_INSTALL = "pip install 'apache-beam>=2.50'"
BEAM_INSTALL_CLONE = "pip install '.[beam]'"


class UsageError(Exception):
    """A mistake in the command line or the dataset file: exit status 2, no traceback."""


def positive_int(text: str) -> int:
    """An argument type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def prefix_name(text: str) -> str:
    """An argument type: a shard name prefix (``sharding.check_prefix``)."""
    why = check_prefix(text)
    if why is not None:
        raise argparse.ArgumentTypeError(f"the prefix {why}, got {text!r}" if text
                                         else f"the prefix {why} (e.g. --prefix train)")
    return text


def folder(text: str) -> str:
    """An argument type: a directory to write into, or where one will be made (not a
    file)."""
    if not storage.is_url(text) and os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory (give a "
                                         "directory; it is created when missing)")
    return text


def seconds(text: str) -> float:
    """An argument type: a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}"
                                         ) from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def quality(text: str) -> int:
    """An argument type: a JPEG quality, 1 to 100."""
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100, got {value}")
    return value


def byte_size(text: str) -> int:
    """``1000``, ``512K``, ``512M``, ``2G`` (powers of 1024; ``MiB``/``MB`` spellings too)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    number = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = number[-1:] if number[-1:] in units else ""
    try:
        value = int(number[:len(number) - len(unit)]) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in bytes such as 512M, got "
                                         f"{text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte, got {text!r}")
    return value


class FailureLimit:
    """``--max-failures``: how many failures a run may have and still exit 0, as a count
    (``25``) or a percentage of the items (``0.5%``)."""

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        number = self.text.removesuffix("%")
        self.percent = number != self.text
        try:
            self.value = float(number) if self.percent else int(number)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number of failures (25) or a percentage of the items (0.5%), "
                f"got {text!r}") from None
        if not 0 <= self.value <= (100 if self.percent else math.inf):
            raise argparse.ArgumentTypeError(
                f"must be between 0% and 100%, got {text!r}" if self.percent
                else f"must be 0 or more, got {text!r}")

    def allows(self, failed: int, total: int) -> bool:
        """Whether ``failed`` failures among ``total`` items are within the limit."""
        if self.percent:
            return failed * 100 <= self.value * total
        return failed <= self.value

    def __repr__(self) -> str:
        return self.text


_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)$")


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: a misspelt flag is named with the closest valid one, under
    this subcommand's usage (argparse would show the top-level usage, or first complain
    about the required flag the typo was meant to be). Abbreviated flags are not taken:
    each flag is written in full, so a new flag never changes what an old command means."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if args is not None:
            self._check_flags(list(args))
        return super().parse_known_args(args, namespace)

    def _check_flags(self, args: list[str]) -> None:
        known = [flag for action in self._actions for flag in action.option_strings]
        unknown = []
        for token in args:
            if token == "--":
                break
            if not token.startswith("-") or token == "-" or " " in token or _NUMBER.match(token):
                continue
            flag = token.split("=", 1)[0] if token.startswith("--") else token
            if flag in known or (not token.startswith("--") and token[:2] in known):
                continue  # a short flag with its value (-n3) or several (-qh)
            close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
            unknown.append(f"{token} (did you mean {close[0]}?)" if close else token)
        if unknown:
            self.error(f"unrecognized argument{'s' if len(unknown) > 1 else ''}: "
                       + ", ".join(unknown))


def options_group(p: argparse.ArgumentParser) -> Any:
    """The subcommand's one "options" group (argparse's own, which holds -h): flags that
    belong to no named group go here, so the help shows no second, leftover group."""
    group = p._optionals  # argparse keeps its default group there; no public accessor
    group.title = "options"
    return group


def add_runner_options(p: Any) -> None:
    """The ``--runner`` and ``--beam-options`` flags."""
    beam = p.add_argument_group(f"Apache Beam ({BEAM_INSTALL})")
    beam.add_argument("--runner", choices=("local", "beam"), default="local",
                      help="local: this machine, on threads and worker processes as "
                           "--threads and --processes say (default); beam: an Apache Beam "
                           "pipeline, which ignores --threads and spreads items over shards "
                           "by a seeded hash (records are the same)")
    beam.add_argument("--beam-options", "--beam_options", default=None, metavar="'FLAGS'",
                      help="Beam pipeline options, one quoted string, e.g. --beam-options="
                           "'--direct_num_workers=2 --direct_running_mode=multi_processing' "
                           "or '--runner=DataflowRunner --project=P --region=R ...' "
                           "(default: the DirectRunner)")


def add_output_options(p: Any, files: Any) -> None:
    """The shard-writing options shared by create and the from-* converters (``files``:
    the group of the input and output flags)."""
    files.add_argument("--prefix", required=True, metavar="NAME", type=prefix_name,
                    help="shard name prefix, e.g. train -> train-00000-of-00010")
    files.add_argument("--output_dir", "--output-dir", required=True, metavar="DIR",
                       type=folder,
                    help="directory for the shards (created when missing)")
    files.add_argument("--shards", type=positive_int, default=1, metavar="N",
                    help="number of shard files (default: 1)")
    files.add_argument("--threads", type=positive_int, default=min(4, os.cpu_count() or 1),
                    metavar="N", help="worker threads (default: min(4, CPUs))")
    files.add_argument("--processes", type=positive_int, default=None, metavar="N",
                    help="worker processes, each writing whole shards with --threads "
                         "threads; 1: all in this process, on threads (default: one per "
                         "core, up to the number of shards and one per 5,000 items, the "
                         "threads shared out among them; so 1, threads only, on one core, "
                         "for fewer than 10,000 items, and when the shards average more "
                         "than 10,000 items, which keeps memory flat)")
    files.add_argument("--worker-timeout", type=seconds, default=DEFAULT["worker_timeout"],
                       metavar="SECONDS",
                       help="a worker process that reports no progress for SECONDS (stopped, "
                            "stuck) is killed and the job stops, to be resumed (default: "
                            "%(default)g)")
    files.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=False,
                    help="write the items in a seeded random order (default: input order)")
    files.add_argument("--store_images", "--store-images", action=argparse.BooleanOptionalAction,
                    default=None, help="store the image bytes in image/encoded (default: yes; "
                    "in the original command line, without a command word: no, as in the "
                    "original tool)")
    more = options_group(p)
    more.add_argument("--compression", choices=("none", "gzip", "zlib"),
                      default=DEFAULT["compression"],
                      help="compress each shard as a whole, as TFRecordOptions does")
    more.add_argument("--seed", type=int, default=DEFAULT["seed"], metavar="N",
                      help="shuffle seed: equal input and seed give identical shards "
                           "(default: a random seed, recorded in the manifest)")
    more.add_argument("--quality", type=quality, default=DEFAULT["quality"], metavar="Q",
                      help="JPEG quality for converted images (default: %(default)s)")
    more.add_argument("--max-side", "--max_side", type=positive_int,
                      default=DEFAULT["max_side"],
                      metavar="PX", help="downscale images whose longer side exceeds PX")
    more.add_argument("--no-decode-check", dest="decode_check", action="store_false",
                      default=DEFAULT["decode_check"],
                      help="do not decode each stored image to prove it decodes (faster)")
    more.add_argument("--validation", choices=("strict", "lenient", "off"),
                      default=DEFAULT["validation"],
                      help="annotation checks (boxes in [0, 1] and not reversed, equal list "
                           "lengths, object/count, finite numbers, integer labels, unique "
                           "ids): strict fails the item, lenient writes it with a warning "
                           "(default: %(default)s)")
    more.add_argument("--max-failures", type=FailureLimit, default=FailureLimit("0"),
                      metavar="N",
                      help="exit 0 when at most N items fail (or N%% of them, e.g. 0.5%%; "
                           "a converter counts its bad annotations too); every failure is "
                           "still listed in the failures file (default: 0, any failure "
                           "makes exit status 1)")
    more.add_argument("--validate-only", action="store_true",
                      help="check the items (annotations, ids, image paths) and write nothing; "
                           "exit status 1 when an item would fail")
    more.add_argument("--root", metavar="DIR", default=DEFAULT["root"],
                      help="dataset root: relative filenames are read from DIR, and paths "
                           "that lead outside it are refused")
    more.add_argument("--max-record-size", type=byte_size,
                      default=DEFAULT["max_record_size"], metavar="SIZE",
                      help="an item whose record would be longer fails (default: 256M, "
                           "the longest record the readers accept unless told otherwise)")
    more.add_argument("--resume", action="store_true", default=DEFAULT["resume"],
                      help="finish an interrupted run in the output directory: keep its "
                           "complete shards, write the rest (same input and options; the "
                           "output is identical to an uninterrupted run)")
    more.add_argument("--restart", action="store_true",
                      help="start over where the output directory holds an interrupted run "
                           "of the prefix, discarding its complete shards (without --resume "
                           "or --restart, such a run is refused)")
    more.add_argument("--fsync", action="store_true", default=DEFAULT["fsync"],
                      help="flush every shard, journal file and the manifest to the disk "
                           "before giving it its name: even a power failure leaves no "
                           "partial file under a final name (slower)")
    more.add_argument("-q", "--quiet", action="store_true",
                      help="no progress and no summary; errors only")
    more.add_argument("-v", "--verbose", action="store_true",
                      help="--runner beam: show Apache Beam's own log lines and its "
                           "workers' (hidden by default: a Beam run prints what a local "
                           "run prints)")


count = plural.count


def _naming_id(failure: dict[str, Any]) -> str:
    """A failed item's message, led by its id when the message does not name it (a file
    that cannot be read is named by its path alone)."""
    message = str(failure.get("error_msg", ""))
    if "id" not in failure:
        return message
    lead = f"id {str(failure['id'])!r}"
    return message if message.startswith(lead) else f"{lead}: {message}"


def print_problems(kind: str, messages: list[str], where: str | None,
                   total: int | None = None) -> None:
    """The first ``SHOWN_FAILURES`` messages on stderr, then how many more (and where);
    ``total``: how many there are, when ``messages`` holds only the first ones."""
    total = len(messages) if total is None else total
    for message in messages[:SHOWN_FAILURES]:
        print(f"  {message}", file=sys.stderr)
    if total > SHOWN_FAILURES:
        more = f"; all are in {where}" if where else ""
        print(f"  ... and {count(total - SHOWN_FAILURES, 'more ' + kind)}{more}",
              file=sys.stderr)


def job_options(args: argparse.Namespace) -> JobOptions:
    """The job options given on the command line (every field of JobOptions is a flag)."""
    return JobOptions(**{name: getattr(args, name) for name in DEFAULT})


def run_job(args: argparse.Namespace, dataset: Any,
            problems: Problems | None = None) -> tuple[int, bool]:
    """Write ``dataset`` as the output options of ``args`` say (locally or on Beam; or,
    with ``--validate-only``, only check it), then report it.

    Args:
        problems: failures found outside the items, known once the job has read them
            (a converter's rejected annotations and skipped images): they count toward
            ``--max-failures``, and the failures file lists them after the failed items.
    Returns:
        The exit status, and whether the run published a dataset (False: nothing was
        written, and the output folder keeps an earlier run's files as they were).
    Raises:
        UsageError: flags that do not go together, or an interrupted run found.
    """
    from .. import local  # the local runner (Pillow)

    more_failures = (lambda: len(problems)) if problems is not None else None
    if args.validate_only:
        return _validate_only(args, dataset, more_failures), False
    if args.resume and args.restart:
        raise UsageError("--resume keeps an interrupted run's shards, --restart discards "
                         "them: give one of them")
    if args.runner == "beam":
        if args.resume:
            raise UsageError("--resume is for the local runner (a Beam pipeline is retried "
                             "by its runner)")
        if args.fsync:
            raise UsageError("--fsync is for the local runner")
        summary = _run_beam(args, dataset)
    elif args.beam_options is not None:
        raise UsageError("--beam-options goes with --runner beam")
    else:
        try:
            summary = local.run(
                dataset, args.prefix, args.output_dir, args.shards, job_options(args),
                num_threads=args.threads, num_processes=args.processes,
                progress=not args.quiet, interrupted="restart" if args.restart else "refuse",
                keep_failures=False,  # the failures file has them, written as they come
                more_failures=problems.entries if problems is not None else None,
            )
        except InterruptedRunError as exc:
            raise UsageError(
                f"{args.output_dir} holds an interrupted run of {exc.name!r}: {exc.complete} "
                f"of {exc.total} shards are complete. To keep them, run the same command "
                f"with --resume: {_resume_command(args)}; to start over, add --restart "
                "instead.") from exc
    failures_path = failures_location(args.output_dir, args.prefix, summary.published)
    if summary.warnings and not args.quiet:
        print(f"{count(len(summary.warnings), 'items were')} written with warnings "
              f"(validation: {args.validation}):", file=sys.stderr)
        print_problems("warnings", summary.warnings, None)
    if not summary.published:
        what = ("every item failed" if summary.total else
                "every image was left out for the problems below" if summary.problems else
                "the dataset holds no items")
        print(f"nothing was written: {what}. No shard was published, and {args.output_dir} "
              f"keeps what it held of {args.prefix!r} (an earlier run's shards and manifest, "
              "if any, with their failures file); this run's failures are listed in "
              f"{failures_path}" + (":" if summary.failed else ""), file=sys.stderr)
    elif summary.failed:
        print(f"{summary.failed} of {summary.total} items failed and were not "
              f"written; they are listed in {failures_path}:", file=sys.stderr)
    if summary.failed:
        print_problems("failures", [_naming_id(f) for f in summary.first_failures],
                       failures_path, summary.failed)
        hint = paths_hint(args, summary.first_failures, summary.failed_by_reason,
                          summary.total, summary.written)
        if hint:
            print(hint, file=sys.stderr)
    if not summary.published:
        return EXIT_FAILED_ITEMS, False
    more = more_failures() if more_failures is not None else 0
    return failure_status(args, summary.failed + more, summary.total), True


def failure_status(args: argparse.Namespace, failed: int, total: int) -> int:
    """The exit status of a run with ``failed`` failures among ``total`` items: 0 within
    ``--max-failures`` (said on stderr when some failed), else 1."""
    if not failed:
        return EXIT_OK
    limit: FailureLimit = args.max_failures
    within = limit.allows(failed, total)
    if limit.value:
        verdict = "within" if within else "over"
        print(f"{count(failed, 'failures')} among {count(total, 'items')}: {verdict} "
              f"--max-failures {limit.text}, so the exit status is {0 if within else 1}",
              file=sys.stderr)
    return EXIT_OK if within else EXIT_FAILED_ITEMS


def paths_hint(args: argparse.Namespace, failures: list[dict[str, Any]],
               by_reason: dict[str, int], total: int, written: int) -> str | None:
    """When every item failed, or most failed as "file not found": where the image paths
    were looked for, and the option that changes it (``--root``; for a converter, the
    option its image paths come from, the parser's ``images_from``). None otherwise."""
    missing = by_reason.get("missing", 0)
    if not missing or (written and missing * 2 <= total):
        return None
    example = next((f["filename"] for f in failures if isinstance(f.get("filename"), str)
                    and "file not found" in str(f.get("error_msg", ""))), None)
    if example is None and any(storage.is_url(str(f.get("filename"))) for f in failures):
        return None  # URLs: their messages say what happened, no folder is involved
    head = (f"{missing} of {total} items failed with 'file not found'"
            + (f" (the first: {example})" if example else ""))
    images_from = getattr(args, "images_from", None)
    if images_from:
        return (f"{head}: the image paths come from {images_from}; check that it names "
                "the folder that holds the images")
    root = getattr(args, "root", None)
    where = (f"the dataset root {root} (--root)" if root
             else f"the current directory, {os.getcwd()}")
    hint = (f"{head}: relative filenames were read from {where}; if they are relative to "
            "another folder, give it with --root DIR")
    folder = os.path.dirname(getattr(args, "dataset_path", "") or "")
    if (example and folder and not storage.is_url(example) and not os.path.isabs(example)
            and not storage.is_url(folder) and os.path.exists(os.path.join(folder, example))
            and (root is None or os.path.realpath(root) != os.path.realpath(folder))):
        hint += (f" (the dataset file's folder holds them: --root {shlex.quote(folder)})")
    return hint


def _validate_only(args: argparse.Namespace, dataset: Any,
                   more_failures: Callable[[], int] | None = None) -> int:
    from ..dryrun import validate_dataset  # (Pillow)

    report = validate_dataset(dataset, validation=args.validation, root=args.root,
                              store_images=args.store_images)
    if report.warnings:
        print(f"{count(len(report.warnings), 'items have')} warnings (they would be "
              f"written; validation: {args.validation}):", file=sys.stderr)
        print_problems("warnings", report.warnings, None)
    if report.failures:
        print(f"{len(report.failures)} of {report.total} items would fail:",
              file=sys.stderr)
        print_problems("failures", [_naming_id(f) for f in report.failures], None)
        hint = paths_hint(args, report.failures, report.failed_by_reason, report.total,
                          report.total - len(report.failures))
        if hint:
            print(hint, file=sys.stderr)
    if report.unknown_keys:
        print(keys.describe(report.unknown_keys), file=sys.stderr)
    print(f"validated {count(report.total, 'items')}: {report.total - len(report.failures)} "
          f"would be written, {len(report.failures)} would fail, {len(report.warnings)} with "
          f"warnings ({args.validation} mode); nothing was written", file=sys.stderr)
    more = more_failures() if more_failures is not None else 0
    return failure_status(args, len(report.failures) + more, report.total)


def _run_beam(args: argparse.Namespace, dataset: Any) -> Any:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # importing Beam warns about cloud clients it does not need
    try:
        from .. import beam
    except ImportError as exc:
        raise UsageError(f"--runner beam needs Apache Beam ({exc}): {BEAM_INSTALL} (or, "
                         f"in a clone of this repository, {BEAM_INSTALL_CLONE})") from exc
    finally:
        root.setLevel(level)
    # Beam's progress lines stay out of our output; a worker's error reaches us and is
    # printed once, without the tracebacks Beam logs for it.
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    for name in ("apache_beam.runners.common", "apache_beam.runners.worker"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    run = functools.partial(beam.run, dataset, args.prefix, args.output_dir, args.shards,
                            job_options(args), beam_options=args.beam_options)
    if getattr(args, "verbose", False):
        logging.getLogger("apache_beam").setLevel(logging.INFO)
        return run()
    _warn_glob_clashes(args.output_dir, args.prefix)  # (the quiet run sets its log aside)
    summary = _quiet_beam(run)
    # The runner logged its summary with the lines set aside: it ends the output here,
    # as a local run's does.
    logging.getLogger("tfrecord_lite.beam").info("%s", summary.describe())
    return summary


def _warn_glob_clashes(output_dir: str, prefix: str) -> None:
    """Warn when another prefix in the output directory shares the shard glob."""
    from ..job import warn_glob_clashes

    try:
        out = storage.folder(output_dir)
    except (OSError, TFRecordLiteError):
        return
    with out:
        warn_glob_clashes(out, prefix)


def _quiet_beam(run: Callable[[], Any]) -> Any:
    """Run a Beam pipeline with what Beam itself prints set aside: the lines of its
    worker processes (which write to this process's standard error, file descriptor 2),
    and the lines its runner logs for them. They go to a temporary file, named when the
    run fails (with -v they are shown)."""
    import tempfile

    handle, path = tempfile.mkstemp(prefix="tfrecord-lite-beam-", suffix=".log")
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(handle, 2)
    failed = True
    try:
        result = run()
        failed = False
        return result
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(handle)
        if failed:
            print(f"tfrecord-lite: Apache Beam's own log of this run: {path} (-v shows "
                  "it as it runs)", file=sys.stderr)
        else:
            os.remove(path)


def failures_location(output_dir: str, prefix: str, published: bool = True) -> str:
    """Where a run's failures file is: ``{prefix}.failures.json`` beside the shards it
    published, else ``{prefix}.unpublished-failures.json``."""
    with storage.folder(output_dir) as out:
        return out.location(failures_name(prefix) if published
                            else unpublished_failures_name(prefix))


def _resume_command(args: argparse.Namespace) -> str:
    """The command line that was run, with --resume (and without --restart)."""
    argv = [a for a in getattr(args, "argv", []) if a != "--restart"]
    if "--resume" not in argv:
        argv.append("--resume")
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    prog = ["tfrecord-lite"] if program.startswith("tfrecord-lite") else [
        "python", "-m", "tfrecord_lite"]
    return shlex.join([*prog, *argv])


def interrupted_message(args: argparse.Namespace | None) -> str:
    """After Ctrl-C (or SIGTERM): how many shards are complete, and the command that keeps
    them."""
    plain = "interrupted; no partial shard was left"
    prefix, output_dir = getattr(args, "prefix", None), getattr(args, "output_dir", None)
    if (args is None or not prefix or not output_dir or getattr(args, "validate_only", False)
            or getattr(args, "to_json", None) or getattr(args, "runner", "local") != "local"):
        return plain
    try:
        with storage.folder(output_dir) as out:
            found = journal.progress(out, prefix)
    except (OSError, TFRecordLiteError):
        found = None
    if found is None:
        return plain
    complete, total = found
    message = (f"interrupted: {complete} of {total} shards of {prefix!r} are complete in "
               f"{output_dir}; no partial shard was left.")
    if complete:
        message += f" To keep them: {_resume_command(args)}"
    return message
