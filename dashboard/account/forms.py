"""The account form: a time zone from the IANA database that this Python knows."""
from __future__ import annotations

from functools import lru_cache
from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import DataRequired


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name, sorted; the legacy aliases (``US/Eastern``) come along."""
    return tuple(sorted(available_timezones()))


def is_zone(name: str | None) -> bool:
    return bool(name) and name in zone_names()


class AccountForm(FlaskForm):
    timezone = SelectField(
        "Time zone",
        validators=[DataRequired(message="Choose a time zone.")],
        validate_choice=True,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = [(name, name.replace("_", " ")) for name in zone_names()]
