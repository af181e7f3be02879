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
