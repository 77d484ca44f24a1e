"""`freqjax.cli`'s one-line errors for the absl entry points, `train.py` and `eval.py`.

absl parses their flags (`--config.<field>=...` included) and would print a flag error in
two lines with exit status 1, a config file's error with its traceback inside, and any
other error with its traceback. `run(main, prog)` makes a bad flag or config, and every
`freqjax.cli.UserError`, one line on stderr with exit status 2; `--traceback` (declared
here) shows the traceback. ml_collections defines a flag per `--config.<field>` override
while `DEFINE_config_file` runs, at import: define it inside `config_flag_errors(prog)`.
"""
from collections.abc import Callable, Sequence
import contextlib
import sys
from typing import Any

from absl import app, flags

from freqjax import cli

flags.DEFINE_bool("traceback", False, cli.TRACEBACK_HELP)


class FlagError(cli.UserError, ValueError):
  """A command-line flag (or `--config` field) absl cannot parse."""


def _unknown_field(error: Exception) -> str:
  """The message for ml_collections' error about an unknown `--config.<field>`.

  Its message is the key in quotes, maybe a "Did you mean" line after it.
  """
  lines = str(error).strip("\"'").replace("\\n", "\n").splitlines()
  key = lines[0].strip("\\'\"")
  named = [arg.split("=")[0] for arg in sys.argv[1:] if arg.startswith("--config.")
           and key in arg.split("=")[0].split(".")[1:]]
  hint = " ".join(line.strip() for line in lines[1:]) or "check its spelling"
  return f"{' '.join(named) or key}: the config has no field {key!r}; {hint}"


def _parse_flags(argv: Sequence[str]) -> list[str]:
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    lines = [line for line in str(e).splitlines() if line.strip()]
    # A config file's own error arrives as a formatted traceback: keep its last line.
    message = lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"
    raise FlagError(f"{message} (--helpfull lists the flags)") from e
  except (AttributeError, KeyError) as e:  # an unknown --config.<field>
    raise FlagError(_unknown_field(e)) from e


@contextlib.contextmanager
def config_flag_errors(prog: str):
  """Around `config_flags.DEFINE_config_file`, which may apply `--config.<field>` flags
  already: an unknown field is one line (module docstring)."""
  try:
    yield
  except (AttributeError, KeyError) as e:
    if cli.wants_traceback(sys.argv[1:]):
      raise
    print(f"{prog}: error: {_unknown_field(e)}", file=sys.stderr)
    sys.exit(cli.EXIT_STATUS)


def run(main: Callable[[list[str]], Any], prog: str) -> int:
  """`app.run(main)` with one-line errors; returns the exit status."""
  @cli.report_errors(prog)
  def run_main(argv):
    del argv  # app.run parses sys.argv
    app.run(main, flags_parser=_parse_flags)
    return 0
  return run_main()
