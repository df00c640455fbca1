"""The roles × actions table of docs/identity.md, generated from PERMISSIONS (a test keeps the page in step)."""

from __future__ import annotations

from trialstack.identity.policy import PERMISSIONS, UNBLINDED_ROLES, Action, Role

_SHORT = {
    Role.INVESTIGATOR: "INV",
    Role.STUDY_COORDINATOR: "CRC",
    Role.MONITOR: "CRA",
    Role.DATA_MANAGER: "DM",
    Role.MEDICAL_MONITOR: "MM",
    Role.SAFETY: "SAF",
    Role.SPONSOR_VIEWER: "SV",
    Role.UNBLINDED_PHARMACIST: "UP",
    Role.STUDY_BUILDER: "SB",
    Role.ADMIN: "ADM",
    Role.PARTICIPANT: "PT",
}


def permissions_markdown() -> str:
    """A Markdown table: one row per action, one column per role, ✓ where PERMISSIONS allows it."""
    header = "| action | " + " | ".join(_SHORT[role] for role in Role) + " |"
    rule = "|---|" + "|".join(":-:" for _ in Role) + "|"
    rows = [
        f"| `{action.value}` | " + " | ".join("✓" if action in PERMISSIONS[role] else "" for role in Role) + " |"
        for action in Action
    ]
    legend = ", ".join(
        f"{_SHORT[role]} = {role.value}" + (" (unblinded)" if role in UNBLINDED_ROLES else "") for role in Role
    )
    return "\n".join([header, rule, *rows, "", legend]) + "\n"
