"""Every %nbexp word and CLI command is documented in the README and has help."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nbexp import magics
from nbexp.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("word", magics.WORDS)
def test_magic_word_documented(word):
    assert f"%nbexp {word}" in README or f"%%nbexp {word}" in README
    method = getattr(magics.NbexpMagics, f"_{word}")
    assert method.__doc__ and method.parser.format_help()


@pytest.mark.parametrize("command", sorted(main.commands))
def test_cli_command_documented(command):
    assert f"nbexp {command}" in README
    res = CliRunner().invoke(main, [command, "--help"])
    assert res.exit_code == 0 and main.commands[command].help
    for param in main.commands[command].params:
        for opt in param.opts:
            if opt.startswith("--") and opt not in ("--help", "--json", "--code"):
                assert opt in README, f"{command} {opt} undocumented"
