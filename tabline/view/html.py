"""The page's HTML pieces: escaping, plotly figures and JSON inside ``<script>``, tables, the template.

Everything that comes from data or from a model goes through `esc` (HTML text and attributes) or `script_json`
(JSON inside a ``<script>`` element), so a cell holding ``</script>`` or ``<img onerror=...>`` is shown as
text. Plotly renders its labels as a small subset of HTML, so strings handed to a figure go through `label`.

Example:
    >>> script_json({"a": "</script><b>&"})
    '{"a": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    >>> esc('"><img src=x>')
    '&quot;&gt;&lt;img src=x&gt;'
"""
from __future__ import annotations

import html
import json
from typing import Any, Iterable

import plotly.graph_objects as go

# Inside <script>, the HTML parser ends the element at the first "</script" whatever the JSON means; "<!--"
# changes how it scans too. These characters only occur inside JSON strings, where \uXXXX means the same.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                              "\u2028": "\\u2028", "\u2029": "\\u2029"})


def esc(value: Any) -> str:
    """HTML-escaped text of any value (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def label(value: Any) -> str:
    """A string for a plotly label: plotly reads ``<br>``, ``<a href>`` ... in labels, so data must be escaped."""
    return html.escape(str(value), quote=False)


def script_json(obj: Any) -> str:
    """JSON that can sit inside a ``<script>`` element without ending it."""
    return json.dumps(obj, default=str, ensure_ascii=False).translate(_SCRIPT_SAFE)


class Figures:
    """Numbers the page's plotly figures and writes the div + script of each."""

    def __init__(self) -> None:
        self.count = 0

    def div(self, fig: go.Figure, height: int = 360) -> str:
        self.count += 1
        div_id = f"fig{self.count}"
        fig.update_layout(height=height, margin=dict(l=60, r=20, t=40, b=50), template="plotly_white")
        payload = fig.to_json().translate(_SCRIPT_SAFE)  # plotly's encoder handles numpy / dates
        return (f'<div class="fig" id="{div_id}"></div><script>(function(){{var f={payload};'
                f'Plotly.newPlot("{div_id}",f.data,f.layout,{{responsive:true,displaylogo:false}});}})();</script>')


def table(columns: Iterable[str], rows: Iterable[Iterable[Any]], cls: str = "") -> str:
    """An HTML table, every header and cell escaped."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        if v != 0 and abs(v) < 1e-3:  # a learning rate, a tolerance: three decimals would show 0
            return f"{v:.3g}"
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def section(anchor: str, title: str, sentence: str, body: str) -> str:
    """One section: a heading, the plain sentence that says what it shows, its content."""
    return (f'<section id="{anchor}"><h2>{esc(title)}</h2><p class="lead">{esc(sentence)}</p>{body}</section>')


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7fb}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c9cfdd}nav a{color:#9fc2ff;margin-right:14px;font-size:14px}
main{padding:10px 28px 40px;max-width:1400px}
section{background:#fff;border-radius:8px;padding:14px 20px;margin:18px 0;box-shadow:0 1px 3px #0001}
h2{margin:4px 0}h3{margin:14px 0 4px;font-size:15px}.lead{color:#4a5568;margin:4px 0 12px}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px}
.missing{background:#fdecea;border-left:4px solid #d93025;padding:6px 10px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border-bottom:1px solid #e2e6ef;padding:3px 8px;text-align:left}
th{background:#eef1f7}pre{background:#f1f3f8;padding:10px;overflow:auto;font-size:12px;max-height:360px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:8px}
.pager{margin:6px 0}.pager input{padding:4px;width:260px}.pager button{margin-left:6px}
.wide{display:block;overflow-x:auto;max-width:100%}
.live{background:#2f9e44;color:#fff;border-radius:10px;padding:1px 8px;font-size:12px;margin-left:6px}
"""

# Search and paging of the embedded rejected rows; cells are set with textContent, never as HTML.
TABLE_JS = """
document.querySelectorAll('.rowtable').forEach(function(box){
  var d=JSON.parse(box.querySelector('script[type="application/json"]').textContent);
  var q=box.querySelector('input'),info=box.querySelector('.info'),tb=box.querySelector('tbody'),page=0,size=20;
  var hits=d.rows;
  function draw(){tb.textContent='';var n=Math.max(1,Math.ceil(hits.length/size));page=Math.min(page,n-1);
    hits.slice(page*size,page*size+size).forEach(function(r){var tr=document.createElement('tr');
      r.forEach(function(c){var td=document.createElement('td');td.textContent=c;tr.appendChild(td);});tb.appendChild(tr);});
    info.textContent=hits.length+' rows match; page '+(page+1)+' of '+n;}
  q.addEventListener('input',function(){var s=q.value.toLowerCase();page=0;
    hits=s?d.rows.filter(function(r){return r.join('\\u0001').toLowerCase().indexOf(s)>=0;}):d.rows;draw();});
  box.querySelector('.prev').onclick=function(){page=Math.max(0,page-1);draw();};
  box.querySelector('.next').onclick=function(){page=page+1;draw();};
  draw();
});
"""


def row_table(columns: list[str], rows: list[list[str]], placeholder: str) -> str:
    """A searchable, paged table whose rows travel as JSON (drawn by `TABLE_JS`)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    return (f'<div class="rowtable"><div class="pager"><input type="search" placeholder="{esc(placeholder)}">'
            '<button class="prev">previous</button><button class="next">next</button> <span class="info"></span>'
            f'</div><div class="wide"><table><thead><tr>{head}</tr></thead><tbody></tbody></table></div>'
            f'<script type="application/json">{script_json({"rows": rows})}</script></div>')


def page(title: str, subtitle: str, nav: list[tuple[str, str]], body: str, plotly_js: str, live: str = "") -> str:
    """The whole page; ``live`` is the served page's refresh script (`tabline.view.serve`), empty on disk."""
    links = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in nav)
    if live:
        links += '<span class="live">live: refreshes as the run writes</span>'
        live = f"<script>{live}</script>"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style>'
            f'<script>{plotly_js}</script></head><body><header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p>'
            f'<nav>{links}</nav></header><main>{body}</main><script>{TABLE_JS}</script>{live}</body></html>')
