"""`trialstack consent copy`: render a subject's signed consent copy again from the ledger and check it.

The copy a participant downloaded is kept encrypted in the vault; its SHA-256 is in the signature events. This
renders it again from those events (the text of the StudyVersion signed under, the names revealed from the vault)
and says whether the bytes, the stored copy and the event agree: exit 0 when they do, 1 when not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from trialstack.bootstrap import bootstrap
from trialstack.cli.common import DbOption, clear_errors, console
from trialstack.consent.handlers import render_from_ledger, signed_copy_pdf

consent_app = typer.Typer(name="consent", help="Informed consent.", no_args_is_help=True)


@consent_app.command("copy")
@clear_errors
def copy_command(
    study: Annotated[str, typer.Option("--study", help="The study.")],
    subject: Annotated[str, typer.Option("--subject", help="The subject.")],
    document: Annotated[str, typer.Option("--document", help="The consent document, e.g. ICF.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the copy rendered again here.")] = None,
    db: DbOption = None,
) -> None:
    """Render the latest signed copy of a document from the ledger; compare it with the stored copy and the event."""
    platform = bootstrap(database_url=db, migrate=True)
    try:
        platform.check_vault()
        with platform.engine.connect() as connection:
            rendered, expected = render_from_ledger(connection, platform.vault, study, subject, document)
            stored = signed_copy_pdf(connection, platform.vault, study, subject, expected)
    finally:
        platform.close()
    if out is not None:
        out.write_bytes(rendered)
    digest = hashlib.sha256(rendered).hexdigest()
    console.print(f"in the event:      {expected}", highlight=False)
    console.print(f"rendered again:    {digest}", highlight=False)
    console.print(f"stored copy:       {hashlib.sha256(stored).hexdigest()}", highlight=False)
    if digest != expected or stored != rendered:
        console.print("[red]the copy rendered from the ledger differs from the one signed[/red]")
        raise typer.Exit(1)
    console.print("identical: the signed copy is what the ledger says was signed")
