"""Visit and form instance names parse strictly: what does not parse is an InvalidInput naming the field."""

from __future__ import annotations

import pytest

from trialstack.capture.refs import FormKey, VisitKey
from trialstack.errors import InvalidInput


@pytest.mark.parametrize("text", ["WEEK2.VS", "UNSCHED.2.VS", "AE.3"])
def test_form_instances_round_trip(text: str) -> None:
    assert str(FormKey.parse(text)) == text


@pytest.mark.parametrize("text", ["AE.²", "AE.0", "AE.-1", "ae.1", "UNSCHED.²", "UNSCHED.٣.VS", "", "A..B"])
def test_malformed_form_instances_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"is not a (form|visit)"):
        FormKey.parse(text)


@pytest.mark.parametrize("text", ["UNSCHED.²", "UNSCHED.٣", "UNSCHED.0", "week2"])
def test_malformed_visit_instances_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match="is not a visit"):
        VisitKey.parse(text)
