"""GET /: in development a short page of links (dashboard, playground, health, the endpoints); in
production a plain 200 that says nothing but the name (uptime monitors, a curious visitor)."""
from flask import Blueprint, current_app, render_template_string

from config import is_development

bp = Blueprint("home", __name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flowgate</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font:15px/1.5 system-ui, sans-serif; max-width:40rem; margin:2rem auto; padding:0 1rem">
<h1>Flowgate <small style="font-weight:normal">(development)</small></h1>
<ul>
  <li><a href="/dashboard">Dashboard</a>: funnels, latency, queues, the console outbox</li>
  {% if flows %}<li>Playground: {% for name in flows %}<a href="/playground/{{ name }}">{{ name }}</a>
  {{- ", " if not loop.last }}{% endfor %}</li>{% endif %}
  <li><a href="/health">Health</a></li>
</ul>
<p>Flow endpoints (register with Meta as the endpoint URI):</p>
<ul>{% for name in flows %}<li><code>/flows/{{ name }}</code></li>
{%- else %}<li>none served</li>{% endfor %}</ul>
</body></html>
"""


@bp.get("/")
def index():
    if not is_development(current_app.config):
        return "Flowgate\n", 200, {"Content-Type": "text/plain; charset=utf-8"}
    return render_template_string(PAGE, flows=current_app.extensions["flows"].names())
