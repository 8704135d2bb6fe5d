"""What every phototag command shares: exit codes, the index option, failing with one line."""

import json
import os
import re
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


def open_index(path, readonly=False):
    """The index for an index run (created or upgraded), or read-only for every other command."""
    from .store import Writer, Reader, StoreError

    try:
        return Reader(path) if readonly else Writer(path)
    except StoreError as exc:
        fail(str(exc))


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(value, **options):
    """JSON that any reader takes, with paths as Python names them: a byte of a file name that
    is not UTF-8 comes as a \\udcXX escape (os.fsdecode's surrogateescape), so that
    ``os.fsencode(json.loads(text)["path"])`` gives the name's bytes back."""
    text = json.dumps(value, ensure_ascii=False, **options)
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
