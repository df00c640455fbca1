"""Study build: upload a protocol file, see every problem with file:line:col, the StudyVersion hash and the
difference from the version in force with its impact; publish it (an amendment needs a reason)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData, UploadFile

from trialstack.api.access import actor_for
from trialstack.api.platform import platform_of
from trialstack.capture.impact import amendment_impact
from trialstack.errors import InvalidInput, TrialStackError
from trialstack.identity.policy import Action, Principal, authorize
from trialstack.protocol.commands import PublishStudyVersion
from trialstack.protocol.diff import diff_definitions
from trialstack.protocol.handlers import PublishOutcome, publish_study_version
from trialstack.protocol.readmodel import list_versions, version_in_force
from trialstack.protocol.version import study_version
from trialstack.protocol.yaml_loader import check_study_yaml
from trialstack.web.forms import errors_of, text
from trialstack.web.routing import web_router
from trialstack.web.run import run
from trialstack.web.session import current_user, posted_form
from trialstack.web.templating import page

router = web_router(prefix="/studies/{study_id}/build")
User = Annotated[Principal, Depends(current_user)]
Posted = Annotated[FormData, Depends(posted_form)]
MAX_BYTES = 2_000_000


class PublishBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version_hash: str = Field(min_length=64, max_length=64)
    reason: str | None = None


def _history(request: Request, study_id: str) -> dict[str, Any]:
    with platform_of(request).engine.connect() as connection:
        versions = list_versions(connection, study_id)
    return {"versions": list(reversed(versions)), "in_force": next((v for v in versions if v.in_force), None)}


@router.get("")
def build_page(study_id: str, request: Request, principal: User) -> Response:
    """The versions published so far and the upload form."""
    authorize(principal, Action.STUDY_BUILD, study_id)
    context = {**_history(request, study_id), "check": None, "errors": {}}
    return page(request, "build.html", context, principal=principal, study_id=study_id)


def _read_upload(upload: UploadFile, field: str) -> str:
    raw = upload.file.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise InvalidInput(f"{upload.filename} has more than {MAX_BYTES} bytes", field=field)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{upload.filename} is not UTF-8 text", field=field) from None


def _uploaded(posted: FormData) -> tuple[str, str]:
    """The YAML text and its file name: an uploaded file, or the text carried from the check to the publish step."""
    upload = posted.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        return _read_upload(upload, "file"), upload.filename
    source = posted.get("source")
    if isinstance(source, str) and source.strip():
        return source, text(posted, "filename") or "study.yaml"
    raise InvalidInput("choose a study definition file (YAML)", field="file")


def _attachments(posted: FormData) -> dict[str, str]:
    """Files uploaded beside the study (consent texts it names with `file:`), or carried from the check step."""
    attached = {
        upload.filename: _read_upload(upload, "attachments")
        for upload in posted.getlist("attachments")
        if isinstance(upload, UploadFile) and upload.filename
    }
    names, texts = posted.getlist("attachment_name"), posted.getlist("attachment_text")
    attached.update(
        {str(n): str(t) for n, t in zip(names, texts, strict=False) if isinstance(n, str) and isinstance(t, str)}
    )
    if sum(len(t) for t in attached.values()) > MAX_BYTES * 4:
        raise InvalidInput("the attached files are too large", field="attachments")
    return attached


def _check(request: Request, study_id: str, source: str, filename: str, attached: dict[str, str]) -> dict[str, Any]:
    """Problems, or the version hash with its diff and impact against the version in force."""
    checked = check_study_yaml(source, file=filename, attached=attached)
    result: dict[str, Any] = {
        "problems": checked.problems,
        "filename": filename,
        "source": source,
        "attachments": attached,
    }
    if checked.definition is None:
        return result
    if checked.definition.study.id != study_id:
        raise InvalidInput(f"{filename} defines study {checked.definition.study.id}, not {study_id}", field="file")
    version = study_version(checked.definition)
    result.update(version=version, definition=checked.definition)
    with platform_of(request).engine.connect() as connection:
        current = version_in_force(connection, study_id)
        if current is not None:
            diff = diff_definitions(current.definition, checked.definition)
            impact = amendment_impact(connection, study_id, diff, current.definition, checked.definition)
            notes = {(c.change.entity, c.change.id): c for c in impact.changes}
            changes = [{"change": c, "impact": notes.get((c.entity, c.id))} for c in diff.changes]
            result.update(current=current, diff=diff, changes=changes, impact=impact, same=current.hash == version.hash)
    return result


@router.post("/check")
def check(study_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Validate an uploaded file; nothing is published."""
    authorize(principal, Action.STUDY_BUILD, study_id)
    context: dict[str, Any] = {**_history(request, study_id), "errors": {}, "check": None}
    try:
        source, filename = _uploaded(posted)
        context["check"] = _check(request, study_id, source, filename, _attachments(posted))
    except TrialStackError as error:
        context["errors"] = errors_of(error)
    status = 200 if context["check"] is not None and not context["check"]["problems"] else 422
    return page(request, "build.html", context, principal=principal, study_id=study_id, status_code=status)


@router.post("/publish")
def publish(study_id: str, request: Request, principal: User, posted: Posted) -> Response:
    """Publish the checked version through the protocol handler (the same content twice is a no-op)."""
    grant = authorize(principal, Action.STUDY_BUILD, study_id)
    context: dict[str, Any] = {**_history(request, study_id), "errors": {}, "check": None}
    try:
        source, filename = _uploaded(posted)
        checked = _check(request, study_id, source, filename, _attachments(posted))
        context["check"] = checked
        if checked["problems"]:
            raise InvalidInput("the file has problems: fix them before publishing", field="file")
        body = PublishBody(version_hash=checked["version"].hash, reason=text(posted, "reason"))
        command = PublishStudyVersion(checked["version"], "yaml", filename, body.reason)
        result = run(
            request,
            actor_for(principal, grant),
            body,
            lambda uow: publish_study_version(uow, command),
            _render_publish,
        )
    except (ValidationError, TrialStackError) as error:
        context["errors"] = errors_of(error)
        return page(request, "build.html", context, principal=principal, study_id=study_id, status_code=422)
    context = {**_history(request, study_id), "errors": {}, "check": None, "published": result}
    return page(request, "build.html", context, principal=principal, study_id=study_id)


def _render_publish(outcome: PublishOutcome, _events: object) -> tuple[int, dict[str, Any]]:
    return 200, {"version_hash": outcome.version_hash, "published": outcome.published}
