"""The forms of the integrations admin page (Flask-WTF: CSRF included)."""
from __future__ import annotations

import re

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from dashboard.integrations import KINDS

MIN_SECRET_LENGTH = 16
# The host the sidebar is framed by is https://{subdomain}.zendesk.com: a plain label only.
ZENDESK_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def strong_secret(_form, field) -> None:
    value = (field.data or "").strip()
    if value and (len(value) < MIN_SECRET_LENGTH or any(c.isspace() for c in value)):
        raise ValidationError(f"A secret has at least {MIN_SECRET_LENGTH} characters and no spaces; paste the whole of it.")
    field.data = value


def rsa_public_key(_form, field) -> None:
    value = (field.data or "").strip()
    if not value:
        field.data = None
        return
    try:
        key = load_pem_public_key(value.encode())
    except (ValueError, TypeError):
        raise ValidationError(
            "That is not a PEM public key. Paste the whole of what Zendesk's app public key address "
            "gives, from -----BEGIN PUBLIC KEY----- to -----END PUBLIC KEY-----."
        ) from None
    if not isinstance(key, RSAPublicKey):
        raise ValidationError("Zendesk signs with RS256: the public key must be an RSA key.")
    field.data = value


class IntegrationForm(FlaskForm):
    """Add an integration, or edit one (its kind is fixed; an empty secret keeps the stored one)."""

    name = StringField("Name", validators=[DataRequired(message="Give the integration a name."), Length(max=200)])
    kind = SelectField("Help desk")
    account = StringField(
        "Help-desk account",
        description="Zendesk: the subdomain (acme for acme.zendesk.com). Intercom: the workspace ID. Generic JSON: any note.",
        validators=[Optional(), Length(max=200)],
    )
    installation_id = StringField(
        "Zendesk app installation ID",
        description="Zendesk only: the number Zendesk gives the installed app (its tokens name it).",
        validators=[Optional(), Length(max=64), Regexp(r"^\d+$", message="The installation ID is a number.")],
    )
    site_slug = SelectField("Site to ask")
    visitor_field = StringField(
        "Visitor ID field",
        description="Zendesk: the ticket custom field's ID. Intercom: the contact attribute's name (e.g. visitorId).",
        validators=[Optional(), Length(max=200)],
    )
    secret = PasswordField(
        "Secret",
        description="Intercom: the app's client secret. Generic JSON: a long random value the help desk sends in the X-Visitor-Lookup-Secret header.",
        validators=[Optional(), Length(max=500), strong_secret],
    )
    public_key_pem = TextAreaField(
        "Zendesk app public key (PEM; paste it once the app is uploaded to Zendesk)",
        validators=[Optional(), Length(max=10_000), rsa_public_key],
    )
    trust_all_agents = BooleanField("Zendesk: show the card to every agent of this Zendesk account, linked to an agent here or not")

    def __init__(self, *args, sites: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = list(KINDS.items())
        self.site_slug.choices = [("", "Every site (the first that knows the visitor)"), *sites]

    def needs(self, kind: str, *, adding: bool) -> bool:
        """Add each kind's required fields' errors; whether the form is still valid."""
        if kind in {"intercom", "json"} and adding and not self.secret.data:
            self.secret.errors.append("Enter the secret.")
        if kind == "intercom" and not (self.visitor_field.data or "").strip():
            self.visitor_field.errors.append("Name the contact attribute that holds the visitor ID.")
        if kind == "zendesk":
            self.account.data = (self.account.data or "").strip().lower()
            if not ZENDESK_SUBDOMAIN.fullmatch(self.account.data):
                self.account.errors.append("Enter the Zendesk subdomain: letters, digits and dashes (acme for acme.zendesk.com).")
            if not (self.visitor_field.data or "").strip().isdigit():
                self.visitor_field.errors.append("Enter the ticket field's ID (a number).")
            # No key yet is fine: Zendesk makes the app's key pair when the app package
            # (which needs this integration saved) is uploaded; until the key is pasted
            # here, the sidebar says so instead of showing a card.
        return not any(field.errors for field in self)


class RotateForm(FlaskForm):
    """A new secret; the current one stays accepted until the rotation ends."""

    secret = PasswordField("New secret", validators=[DataRequired(message="Enter the new secret."), Length(max=500), strong_secret])


class ZendeskUserForm(FlaskForm):
    """Link an agent to their Zendesk user (empty: unlink)."""

    zendesk_user_id = StringField(
        "Zendesk user (account/ID)",
        description="The Zendesk subdomain and the user's ID, such as acme/3940581: an ID means something only within its account.",
        validators=[
            Optional(),
            Length(max=64),
            Regexp(r"^[A-Za-z0-9][A-Za-z0-9-]*/\d{1,20}$", message="Write the Zendesk user as account/ID, such as acme/3940581."),
        ],
    )
