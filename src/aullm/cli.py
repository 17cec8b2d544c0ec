"""The `aullm` command line (docs/design.md, Command line). Thin: parse, load config, call library functions.

Each command group lives in `aullm.commands.<group>`; this module builds the app and maps errors to exit codes:
0 success, 2 bad input or usage (one line, no traceback), 1 anything else.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from aullm import __version__
from aullm.core.console import setup_logging
from aullm.core.errors import ARG_FILTER, UserError
from aullm.core.memory import keep_freed_memory

#: Python parameters whose command-line flag is not `--` + the name with dashes (errors name parameters,
#: `aullm.core.errors.arg`; the command line shows the flag the user typed).
FLAGS = {"overrides": "--set", "data_roots": "--data-root", "report_dir": "--report", "json_out": "--json"}


class AullmGroup(TyperGroup):
    """Turns every UserError raised below into `error: <message>` on stderr and exit code 2."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context; `Any` accepts whichever it passes
        try:
            return super().invoke(ctx)
        except UserError as err:
            typer.echo(f"error: {err.for_command_line(FLAGS)}", err=True)
            ctx.exit(2)


app = typer.Typer(
    cls=AullmGroup,
    name="aullm",
    help="Micro-expression Action Unit detection with an LLM as the reasoning engine (AU-LLM, AULLM++).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aullm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug output."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    setup_logging(-1 if quiet else (1 if verbose else 0))
    ARG_FILTER.flags = FLAGS  # warnings name the flags the user can type
    keep_freed_memory()  # before any command allocates: training re-allocates the same large buffers every step


def _register() -> None:
    from aullm.commands import bench, configs, crop, data, demo, predict, spot, sweep, synth, train

    for module in (synth, data, configs, train, sweep, predict, spot, crop, bench, demo):
        module.register(app)
    from aullm.commands import compare, spot_eval

    compare.register(app)
    spot_eval.register(app)


_register()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
