"""Fixtures of the standards tests: the CDISC files in ../shared/data (skipped, with a reason, when absent
outside CI) and XSD validation of what the exporter writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import shared_data
from trialstack.standards.odm_xsd import odm_schema


@pytest.fixture
def odm_xsds() -> None:
    """Both ODM schema sets: importing any ODM file validates it first."""
    shared_data("cdisc-odm-1.3.2-schema", "ODM1-3-2.xsd")
    shared_data("cdisc-odm-2.0-schema", "ODM.xsd")


def odm_example(name: str) -> Path:
    return shared_data("cdisc-odm-examples", name)


def odmlib(name: str) -> Path:
    return shared_data("odmlib-testdata", name)


def lzzt_usdm() -> Path:
    return shared_data("cdisc-usdm-examples", "CDISC_Pilot_Study.json")


def assert_valid_odm_132(data: bytes) -> None:
    """The bytes validate against ODM1-3-2.xsd; every schema error is shown otherwise."""
    schema = odm_schema("1.3.2")
    tree = etree.ElementTree(etree.fromstring(data))
    assert schema.validate(tree), str(schema.error_log)
