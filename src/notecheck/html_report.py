"""Self-contained HTML reports: the note with its evidence highlighted, and a batch dashboard with inline SVG.

No scripts, fonts, images or links leave the file, so it opens offline and can be archived or attached to a query.
All note text is HTML-escaped. Each highlighted segment carries `data-ev` with the ids of the evidence it belongs to,
so a reviewer (or a test) can check that every evidence span covers exactly its characters.
"""

from __future__ import annotations

import html
from typing import Any, Iterable, Optional

from notecheck.models import CheckResult, Evidence
from notecheck.reporting import headline

GROUPS = {
    "etiology": ("etiology", "#f4b6c2"),
    "anesthesia": ("anesthesia", "#b6d7f4"),
    "anesthesia_by": ("anesthesia", "#b6d7f4"),
    "surgeon_role": ("anesthesia", "#b6d7f4"),
    "manipulation": ("manipulation", "#c9f4b6"),
    "technique": ("technique", "#f4e3b6"),
    "imaging": ("imaging", "#d9c2f0"),
    "imaging_pre": ("imaging", "#d9c2f0"),
    "imaging_post": ("imaging", "#d9c2f0"),
    "approach": ("approach", "#b6f0e6"),
    "reduction": ("approach", "#b6f0e6"),
    "no_reduction": ("approach", "#b6f0e6"),
    "acetabular_wall_fracture": ("fractures", "#f7c99b"),
    "femoral_head_fracture": ("fractures", "#f7c99b"),
    "femoral_shortening": ("fractures", "#f7c99b"),
    "tenotomy": ("fractures", "#f7c99b"),
    "laterality": ("laterality", "#e0e0a0"),
    "cpt_code": ("codes", "#cccccc"),
    "icd10_code": ("codes", "#cccccc"),
}
_OTHER = ("other", "#e8e8e8")
_NONE_ROW = '<tr><td colspan="{}" class="none">None</td></tr>'  # an empty table says so

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1b1b;max-width:1100px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #ddd}
.verdict{padding:12px 16px;border-radius:6px;margin-bottom:12px}
.v-supported{background:#e3f6e3}.v-supported_with_gaps{background:#fff4d6}.v-not_supported,.v-needs_correction{background:#fde2e2}
.v-no_claim,.v-no_code{background:#eef}
.codes span{display:inline-block;margin-right:24px}.codes b{font-size:18px}
pre.note{white-space:pre-wrap;background:#fafafa;border:1px solid #ddd;padding:12px;font:13px/1.5 ui-monospace,Menlo,Consolas,monospace}
mark{border-radius:3px;padding:0 1px;color:inherit}
mark.nc{background:#eee !important;text-decoration:line-through;color:#777}
.sechead{font-weight:bold;text-decoration:underline dotted}
.legend span{display:inline-block;margin:2px 10px 2px 0;padding:1px 6px;border-radius:3px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
.st-met{color:#176b17}.st-missing,.st-conflict{color:#a11;font-weight:bold}.st-not_applicable{color:#777}
.sev-error{color:#a11;font-weight:bold}.sev-warning{color:#8a5a00;font-weight:bold}.sev-info{color:#555}
textarea{width:100%;font:inherit;border:1px solid #ccc;border-radius:4px;padding:6px;background:#fcfcfc}
.small{color:#666;font-size:12px}
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _key(e: Evidence) -> tuple[str, int, int, str]:
    return (e.field, e.start, e.end, e.rule)


def _why_not(e: Evidence) -> str:
    flags = [n[3:] for n in ("is_negated", "is_hypothetical", "is_historical", "is_family", "is_uncertain")
             if getattr(e, n)]
    reason = ", ".join(flags) or "not counted"
    trigger = f" (trigger: {', '.join(e.modifiers)})" if e.modifiers else ""
    return f"{reason}{trigger}"


def highlighted_note(text: str, result: CheckResult) -> str:
    """The note as HTML, each evidence span highlighted; overlapping spans are split into shared segments."""
    evidence = [e for e in result.evidence if 0 <= e.start < e.end <= len(text)]
    cuts = {0, len(text)}
    for e in evidence:
        cuts.update((e.start, e.end))
    heads = {s.start: s for s in result.sections if 0 <= s.start < s.title_end <= len(text)}
    for s in heads.values():
        cuts.update((s.start, s.title_end))
    points = sorted(cuts)
    out = []
    open_head: Optional[int] = None
    for a, b in zip(points, points[1:]):
        if a in heads:
            out.append(f'<span class="sechead" title="section: {_esc(heads[a].category)}">')
            open_head = heads[a].title_end
        covering = [i for i, e in enumerate(evidence) if e.start <= a and b <= e.end]
        chunk = _esc(text[a:b])
        if covering:
            counted = [i for i in covering if evidence[i].counted]
            lead = evidence[(counted or covering)[0]]
            group, colour = GROUPS.get(lead.field, _OTHER)
            titles = []
            for i in covering:
                e = evidence[i]
                state = "counts" if e.counted else f"does not count: {_why_not(e)}"
                titles.append(f"{e.field}={e.value} [{state}] rule: {e.rule}")
            cls = "" if counted else ' class="nc"'
            ids = " ".join(f"ev{i}" for i in covering)
            anchor = "".join(f'<a id="ev{i}"></a>' for i in covering if evidence[i].start == a)
            out.append(f'{anchor}<mark{cls} data-ev="{ids}" data-group="{group}" style="background:{colour}" '
                       f'title="{_esc(" | ".join(titles))}">{chunk}</mark>')
        else:
            out.append(chunk)
        if open_head is not None and b >= open_head:
            out.append("</span>")
            open_head = None
    return "".join(out)


def render_html(result: CheckResult, text: str) -> str:
    """One self-contained HTML page for one note."""
    index = {_key(e): i for i, e in enumerate(result.evidence)}
    legend = "".join(f'<span style="background:{c}">{g}</span>' for g, c in dict(GROUPS.values()).items())
    legend += '<span class="nc" style="background:#eee;text-decoration:line-through">did not count</span>'
    reqs = []
    for r in result.requirements:
        links = " ".join(f'<a href="#ev{index[_key(e)]}">"{_esc(e.text)}"</a>' for e in r.evidence if _key(e) in index)
        reqs.append(f'<tr><td class="st-{r.status}">{_esc(r.status)}</td><td>{_esc(r.description)}</td>'
                    f'<td>{_esc(r.found)}</td><td>{links}</td></tr>')
    issues = []
    for n, i in enumerate(result.issues):
        query = (f'<div class="small">Physician query (copy):</div><textarea readonly rows="3" id="q{n}">'
                 f'{_esc(i.query)}</textarea>') if i.query else ""
        issues.append(f'<tr><td class="sev-{i.severity}">{_esc(i.severity)}</td><td><b>{_esc(i.rule)}</b><br>'
                      f'<span class="small">{_esc(i.name)}</span></td><td>{_esc(i.message)}{query}</td></tr>')
    mods = "".join(f"<li><b>{_esc(m.modifier)}</b> {_esc(m.reason)}</li>" for m in result.modifiers)
    claimed = result.claimed_code or "none"
    supported = result.supported_code or "none"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>notecheck: {_esc(result.source)}</title><style>{CSS}</style></head>
<body>
<div class="verdict v-{_esc(result.verdict)}" id="verdict">
<h1>{_esc(result.verdict.replace('_', ' ').upper())}</h1>
<div id="headline">{_esc(headline(result))}</div>
<div class="codes"><span>Claimed <b id="claimed">{_esc(claimed)}</b></span>
<span>Supported <b id="supported">{_esc(supported)}</b></span></div>
<div id="reason">{_esc(result.supported_reason)}</div>
<div class="small">{_esc(result.source)} · notecheck schema {_esc(result.schema_version)} · family {_esc(result.family)}</div>
</div>
<h2>Requirements for {_esc(result.claimed_code or result.supported_code or 'no code')}</h2>
<table id="requirements"><tr><th>Status</th><th>Requirement</th><th>Found</th><th>Evidence</th></tr>{''.join(reqs)}</table>
<h2>Documentation gaps and queries</h2>
<table id="issues"><tr><th>Severity</th><th>Rule</th><th>Message</th></tr>{''.join(issues) or _NONE_ROW.format(3)}</table>
{f'<h2>Modifiers</h2><ul>{mods}</ul>' if mods else ''}
<h2>Note</h2>
<div class="legend">{legend}</div>
<pre class="note" id="note">{highlighted_note(text, result)}</pre>
</body></html>
"""


# --- batch dashboard ----------------------------------------------------------------------------------------------


def _bar_chart(counts: dict[str, int]) -> str:
    if not counts:
        return "<p>No notes.</p>"
    width, bar_h, gap, label_w = 640, 20, 6, 70
    top = max(counts.values()) or 1
    rows = []
    for n, (code, value) in enumerate(counts.items()):
        y = n * (bar_h + gap)
        w = int((width - label_w - 50) * value / top)
        rows.append(f'<text x="0" y="{y + 15}" font-size="12">{_esc(code)}</text>'
                    f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="#5b8bd9"></rect>'
                    f'<text x="{label_w + w + 6}" y="{y + 15}" font-size="12">{value}</text>')
    height = len(counts) * (bar_h + gap)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="notes by supported code">{"".join(rows)}</svg>')


def render_dashboard(summary: dict[str, Any], confusion: dict[str, dict[str, int]],
                     failing: Iterable[dict[str, Any]], more_failing: int = 0,
                     report_links: Optional[dict[str, str]] = None) -> str:
    """One self-contained page for a batch: counts, codes chart, claimed-vs-supported table, gaps, failing notes."""
    links = report_links or {}
    codes = sorted({c for row in confusion.values() for c in row} | set(confusion))
    head = "".join(f"<th>{_esc(c)}</th>" for c in codes)
    body = "".join(
        f"<tr><th>{_esc(claimed)}</th>" + "".join(f"<td>{confusion[claimed].get(c, '') or ''}</td>" for c in codes)
        + "</tr>" for claimed in sorted(confusion))
    gaps = "".join(f"<tr><td><b>{_esc(g['rule'])}</b></td><td>{g['notes']}</td><td>{100 * g['share']:.1f}%</td></tr>"
                   for g in summary.get("top_gaps", []))
    fails = []
    for row in failing:
        path = row["path"]
        name = f'<a href="{_esc(links[path])}">{_esc(path)}</a>' if path in links else _esc(path)
        fails.append(f"<tr><td>{name}</td><td>{_esc(row.get('status'))}</td><td>{_esc(row.get('claimed_code'))}</td>"
                     f"<td>{_esc(row.get('supported_code'))}</td><td>{_esc(row.get('rules') or row.get('reason'))}</td></tr>")
    if more_failing:
        fails.append(f'<tr><td colspan="5">… and {more_failing} more (see the results file)</td></tr>')
    s = summary
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>notecheck batch</title><style>{CSS}
.cards div{{display:inline-block;margin:0 24px 12px 0}}.cards b{{font-size:22px;display:block}}</style></head>
<body><h1>notecheck batch</h1>
<div class="cards" id="counts"><div><b id="n-checked">{s['notes_checked']}</b>checked</div>
<div><b id="n-passed">{s['passed']}</b>passed</div><div><b id="n-failed">{s['failed']}</b>failed</div>
<div><b id="n-unreadable">{s['unreadable']}</b>unreadable</div>
<div><b>{s['claimed_code_mismatches']}</b>claimed-code mismatches</div></div>
<h2>Notes by supported code</h2>{_bar_chart(s.get('by_supported_code', {}))}
<h2>Claimed (rows) vs supported (columns)</h2>
<table id="confusion"><tr><th></th>{head}</tr>{body}</table>
<h2>Most frequent documentation gaps</h2>
<table id="gaps"><tr><th>Rule</th><th>Notes</th><th>Share</th></tr>{gaps or _NONE_ROW.format(3)}</table>
<h2>Failing notes</h2>
<table id="failing"><tr><th>Note</th><th>Status</th><th>Claimed</th><th>Supported</th><th>Rules / reason</th></tr>{''.join(fails)}</table>
</body></html>
"""
