"""Error types that the command line turns into one clear line and exit code 2 (bad input or usage)."""


class UserError(Exception):
    """Bad input or usage: reported as one line, exit code 2, no traceback."""


class ConfigError(UserError):
    """A config file or --set override that cannot be used; the message names the key or value."""


class DataError(UserError):
    """A dataset root or annotation file that cannot be used at all (single samples are skipped instead)."""


class RunFailed(RuntimeError):
    """Some folds could not be trained (e.g. the loss diverged); finished folds are kept on disk (exit code 1)."""
