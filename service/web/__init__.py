"""The web pages for people: sign-in, the inbox, tasks and cases, rendered on the server (JavaScript only draws diagrams)."""
from flask import Blueprint
from flask_wtf.csrf import CSRFProtect

bp = Blueprint("web", __name__)
# Bound in create_app; every form POST needs its token, except the token-authenticated JSON API.
csrf = CSRFProtect()

from . import auth, case_actions, case_page, case_repairs, errors, inbox, presentation, stuck, task_page, vendor  # noqa: E402,F401  (register hooks and routes on bp)
from . import process_view  # noqa: E402,F401
from . import kpis  # noqa: E402,F401
from . import migrations  # noqa: E402,F401  (version differences, moving cases)
from . import designer  # noqa: E402,F401
from . import admin  # noqa: E402,F401  (users, roles, settings, API tokens)
