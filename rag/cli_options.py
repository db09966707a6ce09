"""What every `pakus` command module shares: the settings a command runs with, the --collection
option, and --json output. A module of its own so that the command modules (cli.py,
cli_collections.py) can share them without importing each other.
"""

from __future__ import annotations

import json

import click

from .settings import Settings


def command_settings(**overrides) -> Settings:
    """The environment's settings (PAKUS_*), with the command's options on top."""
    return Settings.from_env().with_overrides(**overrides)


collection_option = click.option(
    "-c", "--collection", default=None, metavar="NAME",
    help="Collection to use (default: seeds, or PAKUS_COLLECTION). See: pakus collections.")


def echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
