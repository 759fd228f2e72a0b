"""``python -m labeltrail.cli``."""

from labeltrail.cli import app

app()
