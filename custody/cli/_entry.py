"""The console entry point's last line of defence: no traceback reaches a user.

Usage errors (unknown option, missing argument) are one sentence, or with ``--json`` anywhere on the command line
one JSON object ``{"error": "UsageError", "message": …, "exit_code": 2}``. Ctrl-C is a sentence and exit 130. An
unexpected exception (a bug) is one sentence naming its type; ``-vv`` adds the traceback on stderr.
"""

from __future__ import annotations

import json
import logging
import sys

import click

log = logging.getLogger("custody")

INTERRUPTED = "interrupted; a command stopped part-way may be resumed by running it again"


def _wants_json(argv: list[str]) -> bool:
    return "--json" in argv


def _usage_error(exc: click.exceptions.UsageError, argv: list[str]) -> int:
    if _wants_json(argv):
        command = exc.ctx.command_path if exc.ctx is not None else "custody"
        click.echo(
            json.dumps(
                {
                    "error": "UsageError",
                    "message": exc.format_message(),
                    "command": command,
                    "exit_code": exc.exit_code,
                },
                sort_keys=True,
            )
        )
    else:
        exc.show()
    return exc.exit_code


def run(command: click.Command, argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = command.main(args=argv, prog_name="custody", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        code = _usage_error(exc, argv)
    except click.exceptions.ClickException as exc:
        if _wants_json(argv):
            click.echo(json.dumps({"error": type(exc).__name__, "message": exc.format_message()}, sort_keys=True))
        else:
            exc.show()
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo(f"error: {INTERRUPTED}", err=True)
        code = 130
    except Exception as exc:  # a bug: say so in one sentence, keep the traceback for -vv
        log.debug("unexpected failure", exc_info=True)
        message = f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no message'}"
        if _wants_json(argv):
            click.echo(json.dumps({"error": "InternalError", "message": message}, sort_keys=True))
        else:
            click.echo(f"error: {message} (a bug; rerun with -vv for details)", err=True)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)
