"""The error freqjax raises for a data file it cannot use."""
import os


class DataFormatError(ValueError):
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
