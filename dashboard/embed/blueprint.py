"""The embed blueprint object. Its views are ``signed_by_caller`` (dashboard.integrations):
outside the dashboard's login and CSRF checks, since the help desk's signature and our
card token are what authenticate each request."""
from flask import Blueprint

bp = Blueprint("embed", __name__, url_prefix="/embed")
