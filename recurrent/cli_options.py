"""Options that more than one command declares alike, declared once here."""
from __future__ import annotations

import click

# eval and export: which of a run's checkpoints they read (recurrent/runs.py load_model)
checkpoint_option = click.option(
    "--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
    help="Best validation parameters, or the latest.")
