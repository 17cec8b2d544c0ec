"""Error types that the command line turns into one clear line and exit code 2 (bad input or usage).

A message names the parameter the user got wrong with `arg(name, value)`, never with a command-line flag: Python
users read it as the keyword they passed (`onset=40`), command-line users as the flag they typed (`--onset 40`),
because the command line renders the same error with `UserError.for_command_line`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

_OPEN, _SEP, _CLOSE = "\x02", "\x1f", "\x03"
_ARG = re.compile(f"{_OPEN}([A-Za-z_][A-Za-z0-9_]*)(?:{_SEP}(.*?))?{_CLOSE}", re.S)


def arg(name: str, value: object = None) -> str:
    """The parameter `name` (a Python keyword argument) inside an error message, with the value given, if any.

    `value=True` names a switch (`save_final=True` / `--save-final`)."""
    return f"{_OPEN}{name}{'' if value is None else _SEP + str(value)}{_CLOSE}"


def flag_of(name: str, flags: Mapping[str, str]) -> str:
    return flags.get(name, "--" + name.replace("_", "-"))


def render(message: str, flags: Mapping[str, str] | None = None) -> str:
    """`message` with its parameters as Python keywords (`flags` None) or as command-line flags."""

    def one(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        if flags is None:
            return name if value is None else f"{name}={value}"
        flag = flag_of(name, flags)
        return flag if value is None or value == "True" else f"{flag} {value}"

    return _ARG.sub(one, message)


class UserError(Exception):
    """Bad input or usage: reported as one line, exit code 2, no traceback."""

    def __str__(self) -> str:
        return render(super().__str__())

    def for_command_line(self, flags: Mapping[str, str]) -> str:
        """The message with each parameter written as the flag that sets it (`flags`: the names that differ)."""
        return render(super().__str__(), flags)


class ArgFilter(logging.Filter):
    """Renders the parameters in log messages (warnings name them with `arg` too): as Python keywords by default,
    as flags once the command line sets `flags` (its FLAGS)."""

    def __init__(self) -> None:
        super().__init__()
        self.flags: Mapping[str, str] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _OPEN in message:
            record.msg, record.args = render(message, self.flags), None
        return True


#: The one filter on the `aullm` logger (`aullm.core.console` attaches it).
ARG_FILTER = ArgFilter()


class ConfigError(UserError):
    """A config file or `section.key=value` override that cannot be used; the message names the key or value."""


class DataError(UserError):
    """A dataset root or annotation file that cannot be used at all (single samples are skipped instead)."""


class RunFailed(RuntimeError):
    """Some folds could not be trained (e.g. the loss diverged); finished folds are kept on disk (exit code 1)."""


__all__ = ["ARG_FILTER", "ArgFilter", "ConfigError", "DataError", "RunFailed", "UserError", "arg", "render"]
