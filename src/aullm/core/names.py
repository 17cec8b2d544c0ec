"""Names that become parts of paths: a config's `name` (`runs/<name>`, a sweep's `<out-root>/<name>`), a subject
from a sheet (`folds/<subject>`), a clip's name from a manifest (`<out>/<clip>/`), a bundle's name.

Whoever wrote the config, the sheet or the bundle must not be able to make aullm write outside the folder the user
chose, so such a name is one path component: not empty, no `/` or `\\`, not `.` or `..`, no NUL or other control
character. Anything else (spaces, dots inside, non-ASCII letters) is a valid name.
"""

from __future__ import annotations

from aullm.core.errors import ConfigError


def name_problem(name: object) -> str:
    """Why `name` cannot be one path component ("" when it can)."""
    if not isinstance(name, str) or not name.strip():
        return "it is empty"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if name.strip() in (".", ".."):
        return f"{name.strip()!r} names a folder, not a new one"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains a control character"
    return ""


def check_name(name: object, key: str, error: type[Exception] = ConfigError) -> None:
    """Raise `error` naming `key` when `name` cannot be used as one folder or file name."""
    problem = name_problem(name)
    if problem:
        raise error(
            f"invalid value for {key}: {name!r} ({problem}; it becomes a folder name, so it must be one plain name: "
            "no slash, backslash or '..')"
        )


__all__ = ["check_name", "name_problem"]
