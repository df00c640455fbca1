"""The central laboratory in the simulation, through the labs and reconcile handlers, one unit of work per delivery:

- At each visit where the protocol expects a central sample, the site draws one; the laboratory analyses it and
  delivers the next morning: the first half of the study's sites' first samples (screening) by HL7 v2.5.1 ORU^R01
  (a file of one message per sample, LOINC codes), every other sample by a CSV file in the laboratory's own codes
  and units (creatinine in µmol/L, glucose in mmol/L), both parsed by `standards` and received by `labs.handlers`.
- Values follow the subject's local-lab values where the EDC has them (within a few percent), else the reference
  range; now and then a value is severe enough for a CTCAE grade 3 or 4, which alerts the investigator, who
  confirms the proposed adverse event or dismisses it with a reason the next day.
- Now and then the laboratory mistypes a subject number (the result waits in triage until the data manager assigns
  it), sends a corrected result a day later (HL7 OBX-11 C), sends a local value that disagrees with the EDC, or
  loses a sample (reconciliation's fortnightly sweep raises it as missing). Once, a result for somebody who is not in
  the study arrives, and the data manager rejects it.

Its own seeded generator, so the rest of the simulation draws what it drew before for a seed.
"""

from __future__ import annotations

import csv
import random
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from trialstack.labs import commands as cmd
from trialstack.labs import handlers as labs
from trialstack.labs.catalog import LabCatalog, compile_catalog
from trialstack.labs.ranges import ReferenceRange
from trialstack.ledger.envelope import Actor, RecordedEvent
from trialstack.protocol.definition import Labs, LabTest
from trialstack.queries import commands as qcmd
from trialstack.queries import handlers as queries
from trialstack.reconcile.handlers import SYSTEM_RECONCILE, sweep_missing_samples
from trialstack.standards.hl7_oru import parse_oru, split_messages
from trialstack.standards.lab_csv import read_csv
from trialstack.standards.lab_results import LabObservation, LabParseError
from trialstack.terminology.units import conversion, round_to

if TYPE_CHECKING:
    from trialstack.simulation.simulator import Simulation, SubjectRun

DELIVERY_AT = time(6, 0)
SEVERE = 0.015
MISTYPED = 0.01
CORRECTED = 0.03
LOST = 0.03
LOCAL_DISAGREES = 0.04
SWEEP_DAYS = 14
CSV_UNITS = {"mg/dL": "umol/L"}
"""The CSV laboratory reports these mass concentrations as amount of substance (when the test has a molar mass)."""
DISMISSAL = "Haemolysed sample: the repeat drawn the same day was within the normal range."


@dataclass
class Sample:
    run: SubjectRun
    visit: str
    collected: datetime
    accession: str
    values: dict[str, Decimal]
    hl7: bool
    patient_id: str
    corrected: str | None = None
    """The test whose value the laboratory corrects the day after."""


@dataclass
class LabDesk:
    sim: Simulation
    rng: random.Random = field(init=False)
    labs: Labs | None = field(init=False)
    source: str = field(init=False)
    stats: Counter[str] = field(default_factory=Counter)
    _pending: list[Sample] = field(default_factory=list)
    _accessions: int = 0
    _messages: int = 0
    _stranger_sent: bool = False
    _folder: Path = field(init=False)
    _scratch: tempfile.TemporaryDirectory[str] = field(init=False)
    _catalog: LabCatalog | None = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"labs:{self.sim.seed}")
        self.labs = self.sim.definition.labs
        central = [source for source in self.labs.sources if source.central] if self.labs is not None else []
        self.source = central[0].id if central else ""
        self._scratch = tempfile.TemporaryDirectory(prefix="trialstack-demo-labs-")
        self._folder = Path(self._scratch.name)
        self._catalog = compile_catalog(self.labs, self.source) if self.labs is not None and self.source else None

    @property
    def active(self) -> bool:
        return self.labs is not None and bool(self.source) and bool(self.labs.expected.visits)

    def feed(self) -> Actor:
        return Actor(f"feed:{self.source}", "system")

    def open(self) -> None:
        """Reconciliation's missing-sample sweep, every 14 days from the start (the server runs it every hour)."""
        if self.active:
            self._sweep()

    def _sweep(self) -> None:
        self.sim._do(SYSTEM_RECONCILE, _sweep_today, self.sim.clock.now().date())
        self.sim.at(self.sim.clock.now() + timedelta(days=SWEEP_DAYS), self._sweep)

    # reconciliation queries (answered with this desk's generator: the rest of the simulation draws as before) --
    @staticmethod
    def owns_query(event: RecordedEvent) -> bool:
        return str(event.payload.get("check_id") or "").startswith("RC-")

    def plan_query_answer(self, event: RecordedEvent) -> None:
        """The site checks a reconciliation query against the hospital's report within days and answers it; the
        data manager closes it a few days later (unless a correction closed it first)."""
        query_id = event.payload["query_id"]
        run = self.sim._runs.get(event.payload["subject_id"])
        if run is None or run.withdrawn:
            return
        answer = "Checked against the laboratory report: the local value is the one on the source document."
        when = self.sim.clock.now() + timedelta(days=self.rng.randint(1, 10), hours=self.rng.randint(1, 7))
        self.sim.at(when, partial(self._answer, run, query_id, answer))

    def _answer(self, run: SubjectRun, query_id: str, answer: str) -> None:
        if not self.sim._query_has_status(query_id, "open"):
            return
        coordinator = self.sim.staff.coordinator(run.site_id)
        if self.sim._do(coordinator, queries.answer_query, qcmd.AnswerQuery(query_id, answer)) is not None:
            when = self.sim.clock.now() + timedelta(days=self.rng.randint(2, 7))
            self.sim.at(when, partial(self.sim._close, query_id))

    # samples ---------------------------------------------------------------------------------------------
    def at_visit(self, run: SubjectRun, visit_id: str, on: date, entered: dict[str, dict[str, str]]) -> None:
        labs = self.labs
        if not self.active or labs is None or visit_id not in labs.expected.visits:
            return
        if self.rng.random() < LOST:
            self.stats["samples lost"] += 1
            return
        self._accessions += 1
        collected = datetime.combine(on, time(8, self.rng.randint(0, 59)), UTC)
        values = {test.id: value for test in labs.tests if (value := self._value(test, run, entered)) is not None}
        sites = [site.id for site in self.sim.definition.sites]
        first_half = sites.index(run.site_id) < max(1, len(sites) // 2) if run.site_id in sites else True
        hl7 = first_half and visit_id == labs.expected.visits[0]  # the interface went live after screening
        patient = run.subject_id
        if self.rng.random() < MISTYPED:
            patient = _mistyped(run.subject_id)
        sample = Sample(run, visit_id, collected, f"MCL{self._accessions:06d}", values, hl7, patient)
        if values and self.rng.random() < CORRECTED:
            sample.corrected = self.rng.choice(sorted(values))
        self._pending.append(sample)
        self.sim.at(datetime.combine(on + timedelta(days=1), DELIVERY_AT, UTC), self._deliver)

    def _value(self, test: LabTest, run: SubjectRun, entered: dict[str, dict[str, str]]) -> Decimal | None:
        reference = self._range(test, run)
        local = None
        if test.local_item is not None:
            form_id, item_id = test.local_item.split(".")
            local = entered.get(form_id, {}).get(item_id)
        if local is not None:
            try:
                value = Decimal(local) * Decimal(str(self.rng.uniform(0.97, 1.03)))
            except ArithmeticError:
                return None
            if self.rng.random() < LOCAL_DISAGREES:
                value *= Decimal("1.4")
        elif reference is not None and reference.low is not None and reference.high is not None:
            middle, spread = (reference.low + reference.high) / 2, (reference.high - reference.low) / 5
            value = middle + spread * Decimal(str(self.rng.gauss(0, 1)))
        else:
            return None
        if reference is not None and self.rng.random() < SEVERE:
            value = reference.high * 6 if reference.high is not None else value
            if reference.low is not None and self.rng.random() < 0.5:
                value = reference.low / 4
        return round_to(max(value, Decimal(0)), test.decimals)

    def _range(self, test: LabTest, run: SubjectRun) -> ReferenceRange | None:
        return self._catalog.range_for(test, run.profile.sex, run.profile.age) if self._catalog else None

    # deliveries ------------------------------------------------------------------------------------------
    def _deliver(self) -> None:
        today = self.sim.clock.now().date()
        due = [s for s in self._pending if s.collected.date() < today]
        if not due:
            return
        self._pending = [s for s in self._pending if s.collected.date() >= today]
        by_hl7 = [s for s in due if s.hl7]
        by_csv = [s for s in due if not s.hl7]
        if by_hl7:
            self._receive(self._hl7_file(by_hl7, corrected=False))
        if by_csv:
            self._receive(self._csv_file(by_csv, today))
        corrected = [s for s in due if s.corrected is not None]
        if corrected:
            self.sim.at(datetime.combine(today + timedelta(days=1), DELIVERY_AT, UTC),
                        partial(self._send_corrections, corrected))  # fmt: skip

    def _send_corrections(self, samples: list[Sample]) -> None:
        hl7 = [s for s in samples if s.hl7]
        if hl7:
            self._receive(self._hl7_file(hl7, corrected=True))
        for sample in (s for s in samples if not s.hl7):
            self._receive(self._csv_file([sample], self.sim.clock.now().date(), corrected=True))

    def _receive(self, path: Path) -> None:
        observations: list[LabObservation | LabParseError]
        if path.suffix == ".hl7":
            messages = split_messages(path.read_text())
            observations = [o for n, m in enumerate(messages, 1) for o in parse_oru(m, f"{path.name} message {n}")]
        else:
            observations = list(read_csv(path, name=path.name))  # locations name the file, not the scratch folder
        committed = self.sim._do(self.feed(), labs.receive_results, cmd.ReceiveLabResults(self.source, observations))
        self.stats["lab files"] += 1
        for event in committed or ():
            self._react(event)

    def _react(self, event: RecordedEvent) -> None:
        p = event.payload
        tomorrow = self.sim.clock.now() + timedelta(days=1, hours=3)
        if event.event_type == "LabResultUnmatched":
            self.stats["triaged"] += 1
            self.sim.at(tomorrow, partial(self._resolve_triage, p["triage_id"], p["patient_id"]))
        elif event.event_type == "LabAlertRaised":
            self.sim.at(tomorrow, partial(self._review_alert, p["alert_id"], p["site_id"]))

    def _resolve_triage(self, triage_id: str, patient_id: str) -> None:
        subject = next((s for s in self.sim._runs if _mistyped(s) == patient_id), None)
        data_manager = self.sim.staff.data_manager
        if subject is None:
            reason = "Not a participant of this study: the laboratory confirmed the sample belongs to another trial"
            self.sim._do(data_manager, labs.reject_triaged, cmd.RejectLabResult(triage_id, reason))
            return
        reason = f"Subject number mistyped by the laboratory ({patient_id}); sample confirmed with the site"
        self.sim._do(data_manager, labs.assign_triaged, cmd.AssignLabResult(triage_id, subject, None, False, reason))

    def _review_alert(self, alert_id: str, site_id: str) -> None:
        investigator = self.sim.staff.investigator(site_id)
        if self.rng.random() < 0.3:
            self.sim._do(investigator, labs.dismiss_alert, cmd.DismissLabAlert(alert_id, DISMISSAL))
        else:
            self.sim._do(investigator, labs.confirm_alert, cmd.ConfirmLabAlert(alert_id))

    # files as the laboratory writes them -----------------------------------------------------------------
    def _tests(self) -> dict[str, LabTest]:
        assert self.labs is not None
        return {test.id: test for test in self.labs.tests}

    def _hl7_file(self, samples: list[Sample], corrected: bool) -> Path:
        now = self.sim.clock.now()
        stamp = now.strftime("%Y%m%d%H%M%S")
        messages: list[str] = []
        tests = self._tests()
        for sample in samples:
            self._messages += 1
            run = sample.run
            born = date(sample.collected.year - run.profile.age, 1, 1) - timedelta(days=1)
            segments = [
                f"MSH|^~\\&|MERIDIAN-LIS|MERIDIAN|TRIALSTACK|{self.sim.study_id}|{stamp}||ORU^R01^ORU_R01|"
                f"MCL{self._messages:07d}|P|2.5.1",
                f"PID|1||{sample.patient_id}^^^MERIDIAN^PI||||{born:%Y%m%d}|{run.profile.sex}",
                "ORC|RE",
                f"OBR|1||{sample.accession}^MERIDIAN|PANEL^Central laboratory panel|||{sample.collected:%Y%m%d%H%M}"
                f"||||||||||||||{stamp}|||{'C' if corrected else 'F'}",
            ]
            chosen = [sample.corrected] if corrected and sample.corrected else sorted(sample.values)
            for n, test_id in enumerate(chosen, 1):
                test = tests[test_id]
                value = sample.values[test_id] * (Decimal("0.8") if corrected else 1)
                code = test.loinc[0] if test.loinc else test.id
                system = "LN" if test.loinc else "L"
                segments.append(
                    f"OBX|{n}|NM|{code}^{test.name}^{system}||{round_to(value, test.decimals)}|{test.unit}|||||"
                    f"{'C' if corrected else 'F'}|||{sample.collected:%Y%m%d%H%M}"
                )
            messages.append("\r".join(segments))
        path = self._folder / f"ORU_{stamp}_{self._messages}.hl7"
        path.write_text("\r\n".join(messages) + "\r")
        return path

    def _csv_file(self, samples: list[Sample], day: date, corrected: bool = False) -> Path:
        assert self.labs is not None
        source = self.labs.source(self.source)
        tests = self._tests()
        path = self._folder / f"results_{day:%Y%m%d}_{self._accessions}{'_corrected' if corrected else ''}.csv"
        with path.open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(("patient_id", "accession", "test_code", "value", "unit", "status", "version",
                             "collected_at", "sex", "age_years"))  # fmt: skip
            for sample in samples:
                chosen = [sample.corrected] if corrected and sample.corrected else sorted(sample.values)
                for test_id in chosen:
                    test = tests[test_id]
                    own = source.codes.get(test_id) if source is not None else None
                    value = sample.values[test_id] * (Decimal("0.8") if corrected else 1)
                    unit = test.unit
                    if test.molar_mass is not None and test.unit in CSV_UNITS:
                        unit = CSV_UNITS[test.unit]
                        value = round_to(conversion(test.unit, unit, Decimal(test.molar_mass)).apply(value), 0)
                    writer.writerow((sample.patient_id, sample.accession, own[0] if own else test.id, value, unit,
                                     "C" if corrected else "F", "2" if corrected else "1",
                                     sample.collected.isoformat(), sample.run.profile.sex,
                                     sample.run.profile.age))  # fmt: skip
            if not self._stranger_sent and not corrected:
                self._stranger_sent = True
                first = samples[0]
                test_id = sorted(first.values)[0]
                writer.writerow(("9999-001", f"{first.accession}X", test_id, first.values[test_id],
                                 tests[test_id].unit, "F", "1", first.collected.isoformat(), "F", 50))  # fmt: skip
        return path


def _mistyped(subject_id: str) -> str:
    """What a laboratory's transcription makes of a subject number: the first 0 after the site as the letter O."""
    site, _, number = subject_id.partition("-")
    return f"{site}-{number.replace('0', 'O', 1)}" if "0" in number else f"{site}-{number}X"


def _sweep_today(uow: object, study_id: str, today: date) -> list[RecordedEvent]:
    return sweep_missing_samples(uow, study_id, today)  # type: ignore[arg-type]
