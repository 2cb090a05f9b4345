"""Extension objects, bound to an app in create_app()."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from htmx_flask import Htmx

from dashboard.db import Database

db = Database()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()
# Limits are only declared where they apply (the login form); no default limits. Each
# init_app gives the limiter a fresh storage (memory, or Redis from REDIS_URL).
limiter = Limiter(key_func=get_remote_address, strategy="moving-window")
