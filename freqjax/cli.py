"""How freqjax's command lines report a user's mistake: one line on stderr, exit status 2.

Every entry point declares `--traceback` and wraps its `main`:

  @cli.report_errors("python -m freqjax.data.prepare")
  def main(argv=None) -> int:
    parser = argparse.ArgumentParser(...)
    cli.add_traceback_flag(parser)
    ...

A `UserError` (bad data, config or flag; its message names the file or field and the
fix), an `OSError` about a path the user gave (missing, a directory where a file belongs
or the reverse, already there, not permitted) or a full or read-only disk, and a file that
is not UTF-8 text print

  <prog>: error: <message>

on stderr, and `main` returns 2, the status argparse gives a bad command line. Any other
exception is a bug and keeps its traceback. `--traceback` on the command line, or
`FREQJAX_TRACEBACK=1` in the environment (for entry points whose flags another parser
owns), re-raises the user's errors too, with their traceback.

absl entry points (`train.py`, `eval.py`) define the flag with `flags.DEFINE_bool(
"traceback", False, cli.TRACEBACK_HELP)` and wrap the call of `app.run` (which parses
`sys.argv`, where `report_errors` looks for the flag too):

  @cli.report_errors("train.py")
  def _run(argv):
    del argv  # app.run parses sys.argv
    app.run(main)

This module is the lowest layer of freqjax: it imports nothing from it.
"""
import argparse
from collections.abc import Callable, Sequence
import errno
import functools
import os
import sys

EXIT_STATUS = 2
TRACEBACK_FLAG = "--traceback"
TRACEBACK_ENV = "FREQJAX_TRACEBACK"
TRACEBACK_HELP = (f"show the full traceback of input errors too (or set {TRACEBACK_ENV}=1); "
                  "without it they are one line")

# OSErrors that come from a path the user gave or the disk, not from a bug.
_PATH_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError,
                PermissionError)
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


class UserError(Exception):
  """An input the user can fix (a file, a flag, a config field); the message says how.

  freqjax's own errors derive from it, most of them also from ValueError
  (`class DataFormatError(cli.UserError, ValueError)`).
  """


def add_traceback_flag(parser: argparse.ArgumentParser) -> None:
  """Declares `--traceback` (read by `report_errors`) so that `--help` lists it."""
  parser.add_argument(TRACEBACK_FLAG, action="store_true", help=TRACEBACK_HELP)


def wants_traceback(argv: Sequence[str]) -> bool:
  """Whether `argv` holds `--traceback` or the environment sets FREQJAX_TRACEBACK."""
  return TRACEBACK_FLAG in argv or os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


def _path(filename: str | bytes | int) -> str:
  return os.fsdecode(filename) if isinstance(filename, bytes) else str(filename)


def error_message(error: BaseException) -> str | None:
  """The one-line message for an error of the user's making, None for any other error."""
  if isinstance(error, _PATH_ERRORS) or (isinstance(error, OSError) and
                                         error.errno in _DISK_ERRNOS):
    if error.filename is None:  # raised with a message of ours
      return str(error)
    path = _path(error.filename)
    if error.filename2 is not None:  # os.rename, os.replace, os.link
      path += f" -> {_path(error.filename2)}"
    return f"{path}: {error.strerror or error}"
  if isinstance(error, UnicodeDecodeError):
    # It does not know its file; the readers of text files catch it and name theirs.
    return (f"a file is not {error.encoding} text ({error.reason} at byte {error.start}); "
            f"{TRACEBACK_FLAG} shows which")
  if isinstance(error, UserError):
    return str(error)
  return None


def report_errors(prog: str) -> Callable[[Callable[[Sequence[str] | None], int]],
                                         Callable[[Sequence[str] | None], int]]:
  """Decorates `main(argv) -> exit status` to turn user errors into one line (module doc).

  Args:
    prog: the command as the user types it, e.g. "python -m freqjax.data.prepare".
  """
  def decorate(main: Callable[[Sequence[str] | None], int]
               ) -> Callable[[Sequence[str] | None], int]:
    @functools.wraps(main)
    def wrapped(argv: Sequence[str] | None = None) -> int:
      try:
        return main(argv)
      except Exception as error:  # pylint: disable=broad-except
        message = error_message(error)
        if message is None or wants_traceback(sys.argv[1:] if argv is None else argv):
          raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_STATUS
    return wrapped
  return decorate
