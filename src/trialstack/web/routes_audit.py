"""The audit trail viewer: one subject's recorded changes, narrowed to a form instance or an item."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from trialstack.api.platform import platform_of
from trialstack.capture.refs import FormKey
from trialstack.identity.policy import Action, Principal
from trialstack.web.audit import audit_trail
from trialstack.web.loaders import load_subject
from trialstack.web.routing import web_router
from trialstack.web.session import current_user
from trialstack.web.templating import page

router = web_router(prefix="/studies/{study_id}/subjects/{subject_id}/audit")
User = Annotated[Principal, Depends(current_user)]


@router.get("")
def audit_page(
    study_id: str,
    subject_id: str,
    request: Request,
    principal: User,
    form: str | None = None,
    item: str | None = None,
) -> Response:
    """Who changed what, from which value to which, when, why, under which StudyVersion (blinded as the user is)."""
    loaded = load_subject(request, principal, study_id, subject_id, Action.AUDIT_READ)
    form = form or None
    item = item or None
    if form is not None:
        FormKey.parse(form)
    platform = platform_of(request)
    unblinded = principal.is_unblinded(study_id)
    with platform.engine.connect() as connection:
        rows = audit_trail(
            connection, study_id, subject_id, vault=platform.vault, unblinded=unblinded, form=form, item=item
        )
    forms = sorted(str(key) for key in loaded.casebook.forms)
    items = []
    if form is not None:
        definition = loaded.rules.definition.form(FormKey.parse(form).form_id)
        items = [i.id for i in definition.items] if definition is not None else []
    context = {"rows": rows, "subject_id": subject_id, "form": form, "item": item, "forms": forms, "items": items}
    return page(request, "audit.html", context, principal=principal, study_id=study_id)
