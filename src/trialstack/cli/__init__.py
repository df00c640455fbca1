"""The `trialstack` command line (Typer), one sub-app per context."""
