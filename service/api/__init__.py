"""JSON API v1: every request acts as a user identified by a bearer token."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import auth, errors, views  # noqa: E402,F401  (register hooks and routes on bp)
from . import request_checks  # noqa: E402,F401  (after auth: refuse unstorable input, by field)
from . import repairs  # noqa: E402,F401  (a supervisor's fixes)
from . import process_view  # noqa: E402,F401
from . import kpis  # noqa: E402,F401
from . import migrations  # noqa: E402,F401  (version differences, moving cases)
from . import designer  # noqa: E402,F401  (a deployed version's files)
