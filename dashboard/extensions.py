"""Extension objects, bound to an app in create_app()."""
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from htmx_flask import Htmx

from dashboard.db import Database

db = Database()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()
