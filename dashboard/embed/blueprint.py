"""The embed blueprint: outside the dashboard's login, and outside its CSRF check (the
help desk's signature is what authenticates each request)."""
from flask import Blueprint

from dashboard.extensions import csrf

bp = Blueprint("embed", __name__, url_prefix="/embed")
csrf.exempt(bp)
