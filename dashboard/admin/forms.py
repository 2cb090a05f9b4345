"""Admin forms (Flask-WTF: CSRF included)."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, URLField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from dashboard.config import ConfigError, validate_base_url
from dashboard.ticket_links import EXAMPLE_TEMPLATE, MAX_TEMPLATE_LENGTH, InvalidTemplate, clean_template


def looks_like_email(_form, field) -> None:
    value = (field.data or "").strip()
    if "@" not in value or any(c.isspace() for c in value) or value.startswith("@") or value.endswith("@"):
        raise ValidationError("Enter an e-mail address such as name@example.com.")


class AddAgentForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(message="Enter the agent's e-mail address."), Length(max=320), looks_like_email])
    is_admin = BooleanField("Admin (may manage agents, sites and see the audit trail)")


def http_url(_form, field) -> None:
    try:
        field.data = validate_base_url(field.data or "", name="The base URL")
    except ConfigError as error:
        raise ValidationError(str(error)) from None


def plausible_key(_form, field) -> None:
    value = (field.data or "").strip()
    if value and (len(value) < 8 or any(c.isspace() for c in value)):
        raise ValidationError("That does not look like a PostMetric API key (pm_ followed by 64 hex digits).")
    field.data = value


def ticket_template(_form, field) -> None:
    try:
        field.data = clean_template(field.data)
    except InvalidTemplate as error:
        raise ValidationError(str(error)) from None


class SiteForm(FlaskForm):
    """Add a site (key required) or edit one (an empty key keeps the stored one)."""

    name = StringField("Name", validators=[DataRequired(message="Give the site a name."), Length(max=200)])
    base_url = URLField("API base URL", validators=[DataRequired(message="Enter the base URL of the site's PostMetric API."), Length(max=500), http_url])
    api_key = PasswordField("API key", validators=[Optional(), Length(max=500), plausible_key])
    ticket_url_template = URLField(
        "Ticket URL template",
        description=f"Optional. Links earlier tickets of a visitor, e.g. {EXAMPLE_TEMPLATE}",
        validators=[Optional(), Length(max=MAX_TEMPLATE_LENGTH), ticket_template],
    )
