"""Admin forms (Flask-WTF: CSRF included)."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField
from wtforms.validators import DataRequired, Length, ValidationError


def looks_like_email(_form, field) -> None:
    value = (field.data or "").strip()
    if "@" not in value or any(c.isspace() for c in value) or value.startswith("@") or value.endswith("@"):
        raise ValidationError("Enter an e-mail address such as name@example.com.")


class AddAgentForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(message="Enter the agent's e-mail address."), Length(max=320), looks_like_email])
    is_admin = BooleanField("Admin (may manage agents, sites and see the audit trail)")
