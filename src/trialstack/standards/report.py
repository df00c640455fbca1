"""What an import mapped, what it defaulted, and what it could not map: the study builder's checklist.

Nothing a source declares is dropped silently: every element the importer reads ends up either as a
`mapped` entry (source -> target) or an `unmapped` one with the reason, and defaults it had to choose
are `notes`. `warnings()` is the short form the CLI prints; `render()` the full report (`--report`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReportEntry:
    """One line of the report: where in the source (OID, JSON pointer or id), and what became of it."""

    source: str
    detail: str
    target: str | None = None


@dataclass
class MappingReport:
    source_file: str
    source_format: str
    mapped: list[ReportEntry] = field(default_factory=list)
    notes: list[ReportEntry] = field(default_factory=list)
    unmapped: list[ReportEntry] = field(default_factory=list)

    def map(self, source: str, target: str, detail: str = "") -> None:
        self.mapped.append(ReportEntry(source, detail, target))

    def note(self, source: str, detail: str) -> None:
        """A value the importer chose because the source has none (or one the model cannot hold)."""
        entry = ReportEntry(source, detail)
        if entry not in self.notes:
            self.notes.append(entry)

    def skip(self, source: str, reason: str) -> None:
        """Something in the source that the definition does not carry, and why (each fact once)."""
        entry = ReportEntry(source, reason)
        if entry not in self.unmapped:
            self.unmapped.append(entry)

    def warnings(self) -> list[str]:
        """Defaults and unmapped parts, one line each, in the order they were found."""
        return [f"{entry.source}: {entry.detail}" for entry in self.notes] + [
            f"{entry.source}: not mapped: {entry.detail}" for entry in self.unmapped
        ]

    def render(self) -> str:
        """The report as plain text: a header, then mapped, defaulted and unmapped sections."""
        lines = [
            f"Mapping report for {self.source_file} ({self.source_format})",
            f"{len(self.mapped)} mapped, {len(self.notes)} defaulted or adjusted, {len(self.unmapped)} not mapped",
        ]
        sections = (("Mapped", self.mapped), ("Defaulted or adjusted", self.notes), ("Not mapped", self.unmapped))
        for title, entries in sections:
            lines += ["", f"## {title} ({len(entries)})"]
            for entry in entries:
                arrow = f" -> {entry.target}" if entry.target else ""
                detail = f": {entry.detail}" if entry.detail else ""
                lines.append(f"- {entry.source}{arrow}{detail}")
        return "\n".join(lines) + "\n"
