"""Alembic's environment, for the app and for the ``alembic`` command alike.

The app (``dashboard.db.migrate``: ``dashboard migrate`` and ``serve``) hands over an
open connection. The ``alembic`` command, run from the project root (``alembic.ini``),
connects by itself: to ``-x url=...`` when given, else to the app's own DATABASE_URL
as ``dashboard.config.Settings`` reads it (``-x mode=demo`` reads it as the demo does,
without a SECRET_KEY). ``alembic upgrade head --sql`` writes the SQL instead.
"""
from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError

from dashboard.db import MIGRATION_OPTIONS, locked_for_migration, make_engine, make_sqlite_folder
from dashboard.models import Base


def database_url() -> str:
    """The database the ``alembic`` command works on."""
    arguments = context.get_x_argument(as_dictionary=True)
    if arguments.get("url"):
        return arguments["url"]
    from dashboard.config import ConfigError, Settings

    try:
        return Settings.from_env(mode=arguments.get("mode") or None).database_url
    except ConfigError as error:
        raise CommandError(f"{error} Or name the database: alembic -x url=DATABASE_URL ...") from None


def run_migrations(**configuration) -> None:
    context.configure(target_metadata=Base.metadata, **MIGRATION_OPTIONS, **configuration)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection=connection)
else:
    if context.config.config_file_name is not None:
        fileConfig(context.config.config_file_name, disable_existing_loggers=False)
    if context.is_offline_mode():
        run_migrations(url=database_url(), literal_binds=True)
    else:
        engine = make_engine(database_url())
        try:
            make_sqlite_folder(engine)
            with locked_for_migration(engine) as connection:  # the app's lock: no instance migrates meanwhile
                run_migrations(connection=connection)
        finally:
            engine.dispose()
