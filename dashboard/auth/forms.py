"""The login form (Flask-WTF: CSRF included)."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(message="Enter your e-mail address."), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password."), Length(max=1024)])
    remember = BooleanField("Keep me logged in on this computer")
    next = HiddenField()
    # Filled in by app.js from the browser (Intl); used while the agent has not chosen a zone.
    timezone = HiddenField(validators=[Length(max=64)])


class LogoutForm(FlaskForm):
    """Only a CSRF token: logging out is a POST."""
