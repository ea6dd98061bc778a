"""What a supervisor does to a whole case from its page: put it on hold, take it off, cancel it."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, request, url_for

from workflows import handlers

from . import bp

ACTIONS = {
    "suspend": (handlers.suspend_case, "Case {id} is on hold: its clocks stand still until it is resumed."),
    "resume": (handlers.resume_case, "Case {id} is active again; its clocks moved on by the time it was held."),
    "cancel": (handlers.cancel_case, "Case {id} is cancelled; its open tasks and timers are cancelled with it."),
}


@bp.post("/cases/<int:case_id>/<any(suspend, resume, cancel):action>")
def case_action(case_id: int, action: str):
    handler, done = ACTIONS[action]
    handler(current_app.extensions["casework"], actor=g.user, case_id=case_id, reason=request.form.get("reason", ""))
    flash(done.format(id=case_id), "success")
    return redirect(url_for("web.case_page", case_id=case_id), 303)
