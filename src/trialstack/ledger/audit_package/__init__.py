"""Audit packages: a study's events, manifest, signed checkpoint and public key in one file anyone can verify
offline (`trialstack export audit`, `trialstack verify-package`; format in docs/identity.md)."""

from trialstack.ledger.audit_package.export import ExportSummary, export_audit_package
from trialstack.ledger.audit_package.verify import PackageInvalid, PackageReport, verify_audit_package

__all__ = ["ExportSummary", "PackageInvalid", "PackageReport", "export_audit_package", "verify_audit_package"]
