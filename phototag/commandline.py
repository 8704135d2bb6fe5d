"""What every phototag command shares: exit codes, the index option, failing with one line."""

import os
import sys

import click

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def default_db():
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "phototag", "index.db")


db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False),
    envvar="PHOTOTAG_DB",
    default=default_db,
    show_default="$PHOTOTAG_DB, else $XDG_DATA_HOME/phototag/index.db",
    help="The index file.",
)


def fail(message):
    click.echo(f"phototag: {message}", err=True)
    sys.exit(EXIT_FAILED)
