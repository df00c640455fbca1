"""docs/identity.md shows the roles × actions table PERMISSIONS actually grants."""

from __future__ import annotations

from tests.conftest import REPO_ROOT
from trialstack.identity.matrix import permissions_markdown


def test_the_documented_permissions_table_is_the_one_in_force() -> None:
    page = (REPO_ROOT / "docs" / "identity.md").read_text(encoding="utf-8")
    documented = page.split("<!-- permissions:begin -->\n", 1)[1].split("<!-- permissions:end -->", 1)[0]
    assert documented == permissions_markdown(), "regenerate the table with identity.matrix.permissions_markdown()"
