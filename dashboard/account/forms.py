"""The account form: a time zone from the IANA database that this Python knows."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import DataRequired

from dashboard.zones import zone_names


class AccountForm(FlaskForm):
    timezone = SelectField(
        "Time zone",
        validators=[DataRequired(message="Choose a time zone.")],
        validate_choice=True,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = [(name, name.replace("_", " ")) for name in zone_names()]
