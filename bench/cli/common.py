"""What every ``texbench`` command shares: the error convention, ``key=value`` parameters, plugin files.

The error convention: a user's mistake (a bad argument or parameter value, a missing file, missing or
corrupt weights, an unknown method, metric or dataset, a malformed suite or data folder) ends the
command with ``Error: <message>`` on stderr and a non-zero exit status (2 for weights, as scripts that
fetch them on demand expect; 1 otherwise), never with a traceback. Anything else is texbench's own bug
and keeps its traceback. Commands and groups built with :class:`Command` and :class:`Group` apply it;
the ``texbench`` group applies it to plugin commands too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

__all__ = ["Command", "Group", "file_system_error", "load_plugins", "parse_params", "user_error"]

#: Exit status for a missing or corrupt weights file.
WEIGHTS_EXIT_CODE = 2


def user_error(exc: BaseException) -> click.ClickException | None:
    """The click error that reports ``exc`` as a user's mistake, or ``None`` when ``exc`` is not one.

    User mistakes are :class:`texbench.weights.WeightsError` (exit status 2),
    :class:`texbench.registry.PluginError` (unknown or broken plugin), ``ValueError`` (bad parameter
    values, malformed suites, images or data folders: :class:`~texbench.suite.SuiteError`,
    :class:`~texbench.imageio.ImageError` and the calibration's ``BAPPSFormatError`` are ValueErrors),
    ``FileNotFoundError`` and ``PermissionError``; and the file-system faults a user can fix
    (:func:`file_system_error`: a full disk, a read-only target, a path through a file, SQLite's
    "disk is full" and "readonly database").
    """
    from texbench.registry import PluginError
    from texbench.weights import WeightsError

    if isinstance(exc, click.ClickException):
        return None
    fs = file_system_error(exc)
    if fs is not None:
        return click.ClickException(fs)
    if isinstance(exc, WeightsError):
        err = click.ClickException(str(exc))
        err.exit_code = WEIGHTS_EXIT_CODE
        return err
    if isinstance(exc, (PluginError, ValueError, FileNotFoundError, PermissionError)):
        return click.ClickException(str(exc))
    return None


def file_system_error(exc: BaseException) -> str | None:
    """One line naming the path and what to do, for a file-system fault the user can fix; else None."""
    import errno

    from texbench.imageio import display_name
    from texbench.store import fault_message

    store_fault = fault_message(exc)
    if store_fault is not None:
        return store_fault
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    where = display_name(exc.filename) if exc.filename is not None else "a file"
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return f"{where}: no space left on the device (or quota exceeded); free some space or write elsewhere"
    if exc.errno == errno.EROFS:
        return f"{where}: on a read-only file system; write elsewhere (e.g. another --out)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{where}: permission denied; fix its permissions or use another path"
    if exc.errno == errno.ENOTDIR:
        return f"{where}: a part of this path is a file, not a folder; choose another output path"
    if exc.errno == errno.EEXIST:
        return f"{where}: exists and is not a folder; choose another output path"
    if exc.errno == errno.EISDIR:
        return f"{where}: is a folder, a file was expected"
    return None


def _invoke(invoke: Any, ctx: click.Context) -> Any:
    try:
        return invoke(ctx)
    except Exception as exc:
        err = user_error(exc)
        if err is None:
            raise
        raise err from None


class Command(click.Command):
    """A click command that follows texbench's error convention (see the module docstring)."""

    def invoke(self, ctx: click.Context) -> Any:
        return _invoke(super().invoke, ctx)


class Group(click.Group):
    """A click group that follows texbench's error convention for itself and every command under it
    (its ``@group.command()`` commands are :class:`Command`, its sub-groups :class:`Group`)."""

    command_class = Command
    group_class = type

    def invoke(self, ctx: click.Context) -> Any:
        return _invoke(super().invoke, ctx)


#: ``--max-pixels``, shared by run, synth and score
MAX_PIXELS_HELP = ("Largest input image in pixels (width x height), checked before decoding; larger ones are "
                   "refused [default: the suite's max_pixels, else 64000000].")


def parse_params(pairs: Iterable[str]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}`` (values parsed by :func:`texbench.params.parse_value`).

    Raises:
        click.BadParameter: an item has no ``=``.
    """
    from texbench.params import parse_value

    out = {}
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"expected key=value, got {p!r}", param_hint="--param")
        k, v = p.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def load_plugins(files: Iterable[str]) -> None:
    """Register the Synthesizer/Metric/Dataset classes of local plugin files (``--plugin``).

    Raises:
        texbench.registry.PluginError: a file cannot be imported (reported as a user error).
    """
    from texbench.registry import load_plugin_file

    for f in files:
        if not load_plugin_file(f):
            click.echo(f"warning: plugin file {f} defines no Synthesizer, Metric or Dataset", err=True)
