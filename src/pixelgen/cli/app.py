"""The Typer application and the one place where errors become messages.

Every command module registers itself on ``app``; each command only parses options
and calls a plain library function. A ``PixelgenError`` becomes one line on stderr and
its exit code; anything else is a bug, shown in full only with ``PIXELGEN_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import PixelgenError
from ..runtime import tune_allocator

app = typer.Typer(
    name="pixelgen",
    help="Train, evaluate, sample from, complete and export PixelCNN / Row LSTM / "
    "Diagonal BiLSTM image models (Pixel Recurrent Neural Networks).",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

#: Messages for people go to stderr; stdout stays clean for data (e.g. --json -).
console = Console(stderr=True, highlight=False)


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"pixelgen {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Train, evaluate, sample from, complete and export PixelCNN / Row LSTM / Diagonal
    BiLSTM image models (Pixel Recurrent Neural Networks)."""


def debug() -> bool:
    return os.environ.get("PIXELGEN_DEBUG", "") not in ("", "0")


#: Typer's error for a bad option or argument (``-n 0``, ``--format zip``), found through
#: ``typer.BadParameter`` because recent Typer versions carry their own copy of click.
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pixelgen`` script and ``python -m pixelgen``; returns the exit code.

    Typer handles ``--help`` itself; a bad option or argument (Typer's own check) and our
    own errors come out of it as exceptions and are printed here, one line each."""
    try:
        code = app(args=argv, prog_name="pixelgen", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except _CLICK_ERROR as exc:
        if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help
            ctx = getattr(exc, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            console.print(
                f"[bold red]error:[/] {escape(exc.format_message())}{escape(hint)}", soft_wrap=True
            )
        return exc.exit_code
    except typer.Abort:
        console.print("aborted")
        return 1
    except PixelgenError as exc:
        if debug():
            raise
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except Exception as exc:
        if debug():
            raise
        console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
            "(set PIXELGEN_DEBUG=1 for the traceback)",
            soft_wrap=True,
        )
        return 1
    return code if isinstance(code, int) else 0


def entry() -> None:
    """The ``pixelgen`` script and ``python -m pixelgen``: the whole process is ours, so its
    allocator is set here (not in :func:`main`, which tests and other programs call)."""
    tune_allocator()  # large tensors stay in the heap: fewer page faults per step
    sys.exit(main())
