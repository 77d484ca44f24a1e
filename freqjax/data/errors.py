"""The error freqjax raises for a data file it cannot use."""
import os
from collections.abc import Iterable

from freqjax import cli


class DataFormatError(cli.UserError, ValueError):
  """A data file is malformed or inconsistent; the message reads `"<path>: <problem>"`.

  Raise it either with the whole message, `DataFormatError(f"{path}: {problem}")`, or with
  the two parts, `DataFormatError(path, problem)`. Either way `args` holds the one message,
  so the error pickles (it crosses process boundaries in `freqjax.data.prepare`).
  """

  def __init__(self, path_or_message: str | os.PathLike, problem: str | None = None):
    if problem is None:
      super().__init__(str(path_or_message))
    else:
      super().__init__(f"{os.fspath(path_or_message)}: {problem}")


def first_bad_row(rows: Iterable[tuple[int, str]], values: int,
                  what: str) -> tuple[int, str] | None:
  """The first `(number, problem)` among text `rows` `(number, line)` that is not exactly
  `values` numbers (`what` describes the row for the message), or None.

  The slow path of the parsers: NumPy's fast parser only says that *something* failed.
  """
  for number, line in rows:
    tokens = line.split()
    if len(tokens) != values:
      return number, f"expected {values} values ({what}), got {len(tokens)}"
    for token in tokens:
      try:
        float(token)
      except ValueError:
        return number, f"non-numeric value {token[:40]!r} ({what})"
  return None
