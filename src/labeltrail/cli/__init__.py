"""The ``labeltrail`` command line: one Typer app, one module per command group.

Every group is registered here, explicitly; each command is a thin call into the library.
"""

from __future__ import annotations

from labeltrail.cli import annotate, audit, erase, feedback, learning, ops, quality, relabel, replay
from labeltrail.cli.export import export_app
from labeltrail.cli.imports import import_app
from labeltrail.cli.main import app, audit_app
from labeltrail.cli.model import model_app
from labeltrail.cli.projections import projections_app
from labeltrail.cli.registry import annotators_app, schema_app
from labeltrail.cli.report import report

__all__ = ["app"]

audit.register_audit(audit_app)
quality.register(app)
learning.register(app)
annotate.register(app)
replay.register(app)
relabel.register(app)
ops.register(app)
erase.register(app)
feedback.register(app, audit_app)
app.add_typer(projections_app, name="projections")
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")
app.add_typer(model_app, name="model")
app.add_typer(schema_app, name="schema")
app.add_typer(annotators_app, name="annotators")
app.command("report")(report)
