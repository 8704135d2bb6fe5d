"""The README and the command line stay in step: every option `--help` shows is documented."""

import re

import pytest
from click.testing import CliRunner

from phototag.cli import main

from conftest import ROOT

COMMANDS = ["index", "search", "stats", "show", "export", "report", "train", "eval"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_in_help_is_in_the_readme(command):
    readme = (ROOT / "README.md").read_text()
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", result.output)) - {"--help"}
    assert options, result.output
    missing = sorted(option for option in options if f"`{option}" not in readme)
    assert not missing, f"phototag {command}: not in README.md: {missing}"


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    listed = CliRunner().invoke(main, ["--help"]).output
    commands = re.findall(r"^  (\w+)  ", listed, flags=re.M)
    assert set(COMMANDS) <= set(commands)
    assert all(f"phototag {command}" in readme for command in commands)
