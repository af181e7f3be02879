"""The README's configuration table and config.py cannot drift apart: every variable config.py
reads from the environment has a row, every row names a variable it reads, and no other table in
the README carries a setting's row."""
from __future__ import annotations

import re

import config
from conftest import ROOT

README = (ROOT / "README.md").read_text()
NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def row_names(line: str) -> set[str]:
    """The variables a table row's first cell names; ``<NAME>_API_X`` stands for every lookup's."""
    names = set()
    for token in re.findall(r"`([^`]+)`", line.split("|")[1]):
        if token.startswith("<NAME>_API"):
            names.add(token)  # every lookup's own settings, read by pattern (config.LOOKUP_SETTING)
        elif NAME.fullmatch(token):
            names.add(token)
    return names


def configuration_section() -> str:
    return README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]


def test_every_setting_config_reads_is_in_the_readme_table_and_nothing_else():
    documented = set().union(*(row_names(line) for line in configuration_section().splitlines()
                               if line.startswith("| `")))
    read = config.environment_names()
    assert read - documented == set(), "read by config.py, missing from the README's configuration table"
    assert documented - read == set(), "in the README's configuration table, never read by config.py"


def test_no_setting_rows_outside_the_configuration_table():
    rest = README.replace(configuration_section(), "")
    read = config.environment_names()
    stray = [line for line in rest.splitlines() if line.startswith("| `") and row_names(line) & read]
    assert stray == []


def test_the_readme_table_is_the_one_config_py_declares():
    """Name, default and meaning of every row come from config.SETTINGS: a setting added, changed or
    described differently in one place and not the other fails here."""
    assert config.readme_table(README) == config.markdown(), \
        "the README's configuration table differs from config.SETTINGS: run python -m config --write-readme"


def test_every_setting_is_declared_once_and_its_default_reads_back():
    names = [name for s in config.SETTINGS for name in s.env]
    assert len(names) == len(set(names))
    assert len({s.key for s in config.SETTINGS}) == len(config.SETTINGS)
    loaded = config.load({})
    assert loaded == config.defaults()
    for setting in config.SETTINGS:
        if setting.shown is not None or setting in config.PER_LOOKUP or setting.default in (None, {}):
            continue
        # The default written as its variable reads back as the default itself: the README's
        # default cell is a value the parser accepts, and parser and default agree on the type.
        written = setting.shown_default().strip("`")
        assert config.load({setting.env[0]: written})[setting.key] == loaded[setting.key], setting.name


def test_a_value_that_does_not_parse_names_its_variable():
    for name, value, problem in [("FLOW_SESSION_LIFETIME", "3 days", "is not a valid number"),
                                 ("MEMBER_API_TIMEOUT", "soon", "is not a valid number"),
                                 ("LOG_LEVEL", "loud", "is not a level")]:
        try:
            config.load({name: value})
        except config.ConfigError as exc:
            assert str(exc).startswith(f"{name}={value!r} {problem} (") and "\n" not in str(exc)
        else:
            raise AssertionError(f"{name}={value!r} was accepted")


def test_markdown_command_prints_the_table():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "config", "--markdown"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out == config.markdown()
