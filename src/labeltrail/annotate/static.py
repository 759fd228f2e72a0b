"""The page's script and style, served from ``/static`` so the CSP can forbid inline code.

Keyboard map: ``1``-``9`` pick a class, the question keys (``q w e r ...``) cycle the answers
of each atomic question, ``Enter`` submits (with no class picked it confirms the draft),
``Escape`` clears the choices. The time spent is measured by the server, not here.
"""

from __future__ import annotations

__all__ = ["APP_CSS", "APP_JS"]

APP_JS = r"""'use strict';
(function () {
  function onKey(e) {
    const form = document.getElementById('task-form');
    if (!form || e.ctrlKey || e.metaKey || e.altKey) return;
    const tag = e.target && e.target.tagName;
    const typing = tag === 'TEXTAREA' || (tag === 'INPUT' && e.target.type !== 'radio');
    if (typing && e.key !== 'Enter') return;
    if (tag === 'TEXTAREA') return;
    if (/^[1-9]$/.test(e.key)) {
      const radio = form.querySelector('input[name="label"][data-key="' + e.key + '"]');
      if (radio) { radio.checked = true; e.preventDefault(); }
      return;
    }
    const question = form.querySelector('.question[data-key="' + e.key.toLowerCase() + '"]');
    if (question) {
      const radios = Array.from(question.querySelectorAll('input[type="radio"]'));
      const at = radios.findIndex(function (r) { return r.checked; });
      radios[(at + 1) % radios.length].checked = true;
      e.preventDefault();
      return;
    }
    if (e.key === 'Escape') {
      form.querySelectorAll('input[type="radio"]').forEach(function (r) { r.checked = false; });
      return;
    }
    if (e.key === 'Enter') {
      e.preventDefault();
      submit(form);
    }
  }
  function submit(form) {
    let chosen = form.querySelector('input[name="label"]:checked');
    const draft = document.getElementById('task').dataset.draft;
    if (!chosen && draft) {
      chosen = form.querySelector('input[name="label"][value="' + CSS.escape(draft) + '"]');
      if (chosen) chosen.checked = true;
    }
    if (!chosen) {
      document.getElementById('hint').classList.add('error');
      return;
    }
    form.requestSubmit();
  }
  document.addEventListener('keydown', onKey);
})();
"""

APP_CSS = """body{font:16px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#111}
header{display:flex;gap:1em;align-items:center;padding:.6em 1em;background:#1d2733;color:#fff}
header form.inline{margin-left:auto}main{max-width:46em;margin:1em auto;padding:0 1em}
blockquote{font-size:1.25em;background:#fff;border-left:4px solid #1d2733;margin:0;padding:.8em}
section{margin:1em 0}fieldset{background:#fff;border:1px solid #ccd;margin:.8em 0}
.question{margin:.3em 0}.question label,.class{margin-right:1em;display:inline-block}
.class.draft{outline:2px dashed #2a7;padding:0 .3em}kbd{border:1px solid #999;border-radius:3px;
padding:0 .3em;background:#eee;font-size:.85em}.error{color:#b00020;font-weight:600}
#draft{background:#e8f6ee;padding:.5em .8em}.meta{color:#555}table{border-collapse:collapse}
td,th{border:1px solid #ccd;padding:.2em .6em;background:#fff}label{display:block}
#signin-form label,#task-form>label{margin:.5em 0}
"""
