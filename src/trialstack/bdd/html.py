"""The HTML evidence report: one self-contained file (no script, no external asset) a QA reviewer can archive.

It carries what makes the run reproducible and attributable: the StudyVersion hash, the run's time, the seed
and the TrialStack version; per scenario its steps, the failure (expected vs actual, the events produced) and
the head hash of the scenario's ledger after a chain verification; and the coverage of the study's rules.
"""

from __future__ import annotations

from jinja2 import Environment

from trialstack.bdd.junit import run_properties
from trialstack.bdd.results import RunResult

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ run.study_id }} specification: evidence report</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#1d2433;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccd}h3{font-size:1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border:1px solid #dde;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f4f8}code,pre{font:12px/1.4 ui-monospace,monospace}
pre{background:#f6f6f9;padding:.5rem;overflow-x:auto;white-space:pre-wrap}
.passed{color:#126b2d}.failed,.error{color:#a3121d;font-weight:600}.skipped{color:#888}
.verdict{font-size:1.2rem;padding:.5rem 1rem;border-radius:4px;display:inline-block}
.ok{background:#e3f4e8}.ko{background:#fbe4e6}.scenario{border:1px solid #dde;border-radius:4px;padding:.5rem 1rem;
margin:.75rem 0}.meta{color:#556;font-size:12px}table.data{width:auto}.payload{word-break:break-all}
</style></head><body>
<h1>{{ run.study_id }}: specification run, evidence report</h1>
<p>{{ run.study_name }}</p>
<p class="verdict {{ 'ok' if run.passed else 'ko' }}">
{{ 'PASSED' if run.passed else 'FAILED' }}: {{ run.count('passed') }} of {{ run.scenarios|length }} scenarios
passed{% if run.count('failed') %}, {{ run.count('failed') }} failed{% endif %}
{% if run.count('error') %}, {{ run.count('error') }} in error{% endif %}</p>
<table>
{% for name, value in properties.items() %}<tr><th>{{ name }}</th><td><code>{{ value }}</code></td></tr>
{% endfor %}<tr><th>duration</th><td>{{ '%.2f'|format(run.seconds) }} s</td></tr>
</table>

{% if run.failures %}<h2>Failures</h2><ul>
{% for result in run.failures %}
<li><a href="#{{ anchors[result.scenario.location|string] }}">{{ result.scenario.title }}</a>
<span class="meta">{{ result.scenario.location }}</span>: {{ result.failure.message if result.failure else '' }}</li>
{% endfor %}</ul>{% endif %}

<h2>Coverage</h2>
<table><tr><th></th><th>covered</th><th>total</th><th>%</th><th>not exercised</th></tr>
{% for section in run.coverage.sections %}<tr><td>{{ section.name }}</td><td>{{ section.covered }}</td>
<td>{{ section.total }}</td><td>{{ '%.1f'|format(section.percent) }}</td>
<td>{% for line in section.untested %}<code>{{ line.id }}</code> {% else %}none{% endfor %}</td></tr>
{% endfor %}</table>
<p class="meta">A check or criterion is covered when a scenario saw it fail; a visit when a scenario recorded it.</p>
{% for section in run.coverage.sections %}
<details><summary>{{ section.name }}: what each scenario run saw</summary>
<table><tr><th>id</th><th>description</th><th>seen</th></tr>
{% for line in section.lines %}<tr><td><code>{{ line.id }}</code></td><td>{{ line.label }}</td>
<td class="{{ 'passed' if line.covered else 'failed' }}">{{ line.seen|sort|join(', ') or 'never' }}</td></tr>
{% endfor %}</table></details>
{% endfor %}

<h2>Scenarios</h2>
{% for file, results in run.by_file().items() %}
<h3>{{ results[0].scenario.feature }} <span class="meta">{{ file }}</span></h3>
{% for result in results %}
<div class="scenario" id="{{ anchors[result.scenario.location|string] }}">
<div><span class="{{ result.status }}">{{ result.status|upper }}</span> {{ result.scenario.name }}
<span class="meta">{{ result.scenario.location }} · {{ '%.3f'|format(result.seconds) }} s ·
{{ result.ledger_events }} ledger events · head <code>{{ result.ledger_head[:16] }}</code> ·
chain {{ 'verified' if result.chain_verified else 'BROKEN' }}</span></div>
<table>{% for step in result.steps %}<tr><td class="{{ step.status }}">{{ step.status }}</td>
<td>{{ step.step }}{% if step.step.table %}<table class="data"><tr>{% for cell in step.step.table.header %}
<th>{{ cell }}</th>{% endfor %}</tr>{% for row in step.step.table.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>
{% endfor %}</tr>{% endfor %}</table>{% endif %}</td>
<td class="meta">line {{ step.step.location.line }}</td></tr>{% endfor %}</table>
{% if result.failure %}{% set failure = result.failure %}
<p class="failed">{{ failure.message }}</p>
{% if failure.expected or failure.actual %}<table><tr><th>expected</th><td>{{ failure.expected }}</td></tr>
<tr><th>actual</th><td>{{ failure.actual }}</td></tr></table>{% endif %}
<p>Events produced by the step under test:</p>
{% if result.action_events %}<table><tr><th>#</th><th>event</th><th>stream</th><th>actor</th><th>payload</th></tr>
{% for event in result.action_events %}<tr><td>{{ event.study_seq }}</td><td>{{ event.event_type }}</td>
<td><code>{{ event.stream }}</code></td><td>{{ event.actor }}</td>
<td><code class="payload">{{ event.payload }}</code></td></tr>
{% endfor %}</table>{% else %}<p class="meta">none</p>{% endif %}
{% endif %}
</div>
{% endfor %}{% endfor %}
<p class="meta">Generated by TrialStack {{ run.trialstack_version }}. Each scenario ran in its own throwaway
ledger through the real command handlers, with a fixed clock and seed {{ run.seed }}; rerunning the same
features on the same StudyVersion and TrialStack version reproduces every ledger head hash above.</p>
</body></html>
"""


def html_report(run: RunResult) -> str:
    template = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True).from_string(_TEMPLATE)
    anchors = {str(result.scenario.location): f"scenario-{index}" for index, result in enumerate(run.scenarios, 1)}
    return template.render(run=run, properties=run_properties(run), anchors=anchors)
