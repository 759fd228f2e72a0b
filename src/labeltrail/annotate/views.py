"""Server-side rendering with Jinja2, autoescape on: every value is escaped as HTML.

Templates are inline strings so the package needs no data files. A crowd task page never
renders ``prior_votes`` (crowd annotators are blind to each other); an expert page shows the
crowd's votes and the thread context, which is what the article says the expert needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape

from labeltrail.events.models import LabelSchemaPublished, TaskAssigned

__all__ = ["QUESTION_KEYS", "QuestionView", "render_page"]

QUESTION_KEYS = "qwertyuiop"
"""Question i (0-based) is answered by key QUESTION_KEYS[i], which cycles its answers."""

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{% if refresh %}<meta http-equiv="refresh" content="{{ refresh }}">{% endif %}
<title>{{ title }} · labeltrail</title>
<link rel="stylesheet" href="/static/app.css"><script src="/static/app.js" defer></script>
</head><body>
<header><strong>labeltrail</strong>
{% if annotator %}<span id="who">{{ annotator }}</span>
<form method="post" action="/signout" class="inline"><button type="submit">Sign out</button></form>
{% endif %}</header>
<main>{% block main %}{% endblock %}</main></body></html>"""

_SIGNIN = """{% extends "base" %}{% block main %}
<h1>Sign in</h1>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<form method="post" action="/signin" id="signin-form">
<label>Annotator id <input name="annotator" autocomplete="username" required></label>
<label>Token <input name="token" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>
{% endblock %}"""

_EMPTY = """{% extends "base" %}{% block main %}
<h1 id="empty">No tasks for you right now</h1>
<p>{% if not ready %}Reading the task log&hellip; {% endif %}This page checks again every
{{ refresh }} seconds.</p>
{% endblock %}"""

_ERROR = """{% extends "base" %}{% block main %}
<h1>{{ title }}</h1><p class="error" role="alert" id="error">{{ message }}</p>
<p><a href="/tasks/next">Back to your tasks</a></p>
{% endblock %}"""

_TASK = """{% extends "base" %}{% block main %}
<article id="task" data-pool="{{ task.pool }}" data-draft="{{ task.prelabel or '' }}">
<p class="meta">{{ 'Adjudication' if expert else 'Task' }} · schema {{ task.schema_version }}
· {{ depth }} in your queue</p>
<section id="comment"><h2>Comment</h2><blockquote id="comment-text">{{ task.text }}</blockquote>
</section>
{% if task.context %}<section id="context"><h2>Thread context</h2><ol>
{% for text in task.context %}<li>{{ text }}</li>{% endfor %}</ol></section>{% endif %}
{% if expert %}<section id="crowd-votes"><h2>Crowd votes</h2>
{% if task.prior_votes %}<table><tr><th>annotator</th><th>label</th><th>confidence</th></tr>
{% for v in task.prior_votes %}<tr><td>{{ v.annotator_id }}</td><td>{{ v.label }}</td>
<td>{{ '%.2f'|format(v.confidence) if v.confidence is not none else '-' }}</td></tr>{% endfor %}
</table>{% else %}<p>none recorded</p>{% endif %}</section>{% endif %}
{% if task.prelabel %}<section id="draft"><h2>Model draft</h2>
<p><strong id="draft-label">{{ task.prelabel }}</strong>
{% if task.prelabel_confidence is not none %}confidence
<span id="draft-confidence">{{ '%.2f'|format(task.prelabel_confidence) }}</span>{% endif %}
: press <kbd>Enter</kbd> to confirm, or a class key to correct.</p></section>{% endif %}
<form id="task-form" method="post" action="/tasks/{{ task.assignment_id|urlencode }}">
<fieldset id="questions"><legend>Questions</legend>
{% for q in questions %}<div class="question" data-key="{{ q.key }}" id="q-{{ q.question_id }}">
<kbd>{{ q.key }}</kbd> <span class="qtext">{{ q.text }}</span>
{% for a in q.answers %}<label><input type="radio" name="answer.{{ q.question_id }}"
value="{{ a }}">{{ a }}</label>{% endfor %}</div>{% endfor %}
</fieldset>
<fieldset id="classes"><legend>Label</legend>
{% for c in classes %}<label class="class{{ ' draft' if c == task.prelabel else '' }}">
<input type="radio" name="label" value="{{ c }}" data-key="{{ loop.index }}">
<kbd>{{ loop.index }}</kbd> {{ c }}</label>{% endfor %}
</fieldset>
{% if expert %}<label>Confidence <input name="confidence" type="number" min="0" max="1"
step="0.05" value="0.9"></label>
<label>Note <textarea name="note" maxlength="2000"></textarea></label>{% endif %}
<p id="hint">Keys: <kbd>1</kbd>-<kbd>{{ classes|length }}</kbd> class,
{% if questions %}<kbd>{{ questions[0].key }}</kbd>&hellip; answer a question, {% endif %}
<kbd>Enter</kbd> submit{{ ' (confirms the draft)' if task.prelabel else '' }}.</p>
<button type="submit">Submit</button>
</form></article>
{% endblock %}"""

_ENV = Environment(
    loader=DictLoader(
        {"base": _BASE, "signin": _SIGNIN, "empty": _EMPTY, "error": _ERROR, "task": _TASK}
    ),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
)


@dataclass(frozen=True)
class QuestionView:
    """A question as the page shows it."""

    question_id: str
    text: str
    answers: list[str]
    key: str


def _questions(task: TaskAssigned, schema: LabelSchemaPublished) -> list[QuestionView]:
    asked = [q for q in schema.questions if q.question_id in task.questions]
    return [
        QuestionView(q.question_id, q.text, list(q.answers), QUESTION_KEYS[i])
        for i, q in enumerate(asked[: len(QUESTION_KEYS)])
    ]


def render_page(name: str, *, title: str, annotator: str | None = None, **values: object) -> str:
    """Render one of ``signin``, ``empty``, ``error`` or ``task``.

    For ``task`` pass ``task`` and ``schema``; the pool decides what is shown.
    """
    if name == "task":
        task = values["task"]
        schema = values["schema"]
        if not isinstance(task, TaskAssigned) or not isinstance(schema, LabelSchemaPublished):
            raise TypeError("render_page('task') needs a TaskAssigned and its schema")
        values = {
            **values,
            "expert": task.pool == "expert",
            "questions": _questions(task, schema),
            "classes": list(schema.classes),
        }
    values.setdefault("refresh", None)
    return _ENV.get_template(name).render(title=title, annotator=annotator, **values)
