"""Every %nbexp word and CLI command is documented in the README, and its documented ``--help``
works: run for real, it prints help that names the word or command and every option it takes."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from nbexp import magics
from nbexp.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _cli_commands() -> list[list[str]]:
    """Every command path of the CLI, the subcommands of groups (``export bundle``) included."""
    ctx = click.Context(main, info_name="nbexp")
    paths = []

    def walk(group: click.Group, path: list[str]) -> None:
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            if cmd is None:  # an exporter whose library is not installed
                continue
            paths.append([*path, name])
            if isinstance(cmd, click.Group):
                walk(cmd, [*path, name])

    walk(main, [])
    return paths


def _cli_command(path: list[str]) -> click.Command:
    ctx = click.Context(main, info_name="nbexp")
    cmd: click.Command = main
    for name in path:
        cmd = cmd.get_command(ctx, name)
    return cmd


def _options(params) -> list[str]:
    return [opt for p in params for opt in p.opts if opt.startswith("-")]


@pytest.mark.parametrize("word", magics.WORDS)
def test_magic_word_documented(word):
    assert f"%nbexp {word}" in README or f"%%nbexp {word}" in README


@pytest.mark.parametrize("word", magics.WORDS)
def test_magic_word_help_runs(word, cell, capsys):
    """``%nbexp WORD --help`` and ``%nbexp WORD?`` print the word's help headed ``%nbexp WORD``
    (not the method's name), with all its options, and run nothing."""
    if word in ("export", "import"):  # handed to the CLI: its help is the command's
        options = _options(main.commands[word].params)
    else:
        options = [opt for a in getattr(magics.NbexpMagics, f"_{word}").parser._actions for opt in a.option_strings]
    if word == "run":
        forms = [
            "%%nbexp run --help\nprint('the body ran')",
            "%%nbexp run?\nprint('the body ran')",
            "%nbexp run --help",
        ]
    else:
        forms = [f"%nbexp {word} --help", f"%nbexp {word}?"] + (
            [] if word in ("export", "import") else [f"%nbexp {word} -h"]
        )
    for form in forms:
        capsys.readouterr()
        res = cell(form)
        out, err = capsys.readouterr()
        assert res.success, (form, res.error_in_exec or res.error_before_exec)
        assert "Error" not in err and "not found" not in out, (form, out, err)
        assert f"sage: %nbexp {word} " in out, (form, out)
        assert "the body ran" not in out
        for opt in options:
            assert opt in out, f"{form}: {opt} missing from\n{out}"


@pytest.mark.parametrize("path", _cli_commands(), ids=" ".join)
def test_cli_command_documented(path):
    command = _cli_command(path)
    assert f"nbexp {' '.join(path)}" in README
    assert command.help
    for opt in _options(command.params):
        if opt.startswith("--") and opt not in ("--help", "--json", "--code"):
            assert opt in README, f"{' '.join(path)} {opt} undocumented"


@pytest.mark.parametrize("path", _cli_commands(), ids=" ".join)
def test_cli_command_help_runs(path):
    """``nbexp CMD --help`` prints help that names the command and lists all its options."""
    res = CliRunner().invoke(main, [*path, "--help"], prog_name="nbexp")
    assert res.exit_code == 0, res.output
    assert f"Usage: nbexp {' '.join(path)} " in res.output
    for opt in [*_options(_cli_command(path).params), "--help"]:
        assert opt in res.output, f"nbexp {' '.join(path)} --help: {opt} missing"
