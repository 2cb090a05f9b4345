"""The login and password forms (Flask-WTF: CSRF included)."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from dashboard.passwords import MAX_PASSWORD_LENGTH, password_problem


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(message="Enter your e-mail address."), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password."), Length(max=MAX_PASSWORD_LENGTH)])
    remember = BooleanField("Keep me logged in on this computer")
    next = HiddenField()
    # Filled in by app.js from the browser (Intl); used while the agent has not chosen a zone.
    timezone = HiddenField(validators=[Length(max=64)])


def password_rule(_form, field) -> None:
    problem = password_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


class SetPasswordForm(FlaskForm):
    """A new password, typed twice (from a set-password link)."""

    password = PasswordField("New password", validators=[DataRequired(message="Enter a new password."), password_rule])
    confirm = PasswordField("New password again", validators=[EqualTo("password", message="The two passwords differ.")])


class ChangePasswordForm(SetPasswordForm):
    """The agent's own password change: the current one first."""

    current_password = PasswordField("Current password", validators=[DataRequired(message="Enter your current password."), Length(max=MAX_PASSWORD_LENGTH)])
