"""The documentation and the command line stay in step: docs/commands.md is what each command's
`--help` prints (made by `python -m phototag.reference`), and the README names every command."""

import re

from click.testing import CliRunner

from phototag.cli import main
from phototag.reference import markdown

from conftest import ROOT


def test_the_command_reference_is_what_the_commands_print():
    written = (ROOT / "docs" / "commands.md").read_text()
    assert written == markdown(), ("docs/commands.md is not what the commands print: "
                                   "python -m phototag.reference > docs/commands.md")


def test_every_command_and_option_is_in_the_reference():
    reference = markdown()
    for command in ("index", "search", "people", "report", "export", "stats", "show", "train", "eval"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0, result.output
        options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", result.output))
        section = reference.split(f"## `phototag {command}`")[1].split("\n## ")[0]
        assert options and all(option in section for option in options), command


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    listed = CliRunner().invoke(main, ["--help"]).output
    commands = re.findall(r"^  (\w+)  ", listed, flags=re.M)
    assert {"index", "search", "people", "report", "export"} <= set(commands)
    missing = [command for command in commands if f"phototag {command}" not in readme]
    assert not missing, f"README.md never mentions phototag {missing}"
