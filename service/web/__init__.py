"""The web pages for people: sign-in and the inbox, rendered on the server (no JavaScript needed)."""
from flask import Blueprint
from flask_wtf.csrf import CSRFProtect

bp = Blueprint("web", __name__)
# Bound in create_app; every form POST needs its token, except the token-authenticated JSON API.
csrf = CSRFProtect()

from . import auth, errors, inbox, presentation  # noqa: E402,F401  (register hooks and routes on bp)
