"""Static files under versioned names (``/static/<hash>/app.css``), kept by caches for a year.

``url_for("static", filename=...)`` puts a hash of the file's content in the path, so a
browser or proxy may keep the answer for good (``immutable``): a changed file gets a new
name, and a page always asks for the files it was built with. A path in the name, not a
``?v=`` query, because some proxies do not cache URLs with a query at all. An old or
unversioned name still answers, with ``no-cache`` (revalidated by its ETag), so a page
from before a deploy keeps working.
"""
from __future__ import annotations

import hashlib
import os
import threading
from datetime import timedelta

from flask import Flask, Response, send_from_directory
from werkzeug.security import safe_join

VERSION_LENGTH = 12
IMMUTABLE_FOR = timedelta(days=365)


class StaticVersions:
    """The content hash of each file in ``folder``, read again only when the file changes."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._known: dict[str, tuple[tuple[int, int], str]] = {}

    def version(self, filename: str) -> str | None:
        """The file's version (hex), or None when there is no such file in the folder."""
        path = safe_join(self.folder, filename)
        try:
            stat = os.stat(path) if path else None
        except OSError:
            return None
        if stat is None or not os.path.isfile(path):
            return None
        # One stat per URL built: a file edited while the server runs gets a new name.
        signature = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            known = self._known.get(filename)
        if known is not None and known[0] == signature:
            return known[1]
        with open(path, "rb") as file:
            digest = hashlib.sha256(file.read()).hexdigest()[:VERSION_LENGTH]
        with self._lock:
            self._known[filename] = (signature, digest)
        return digest


def init_app(app: Flask) -> None:
    """Serve ``app.static_folder`` under versioned names as well as the plain ones."""
    assert app.static_folder is not None and app.static_url_path is not None
    versions = StaticVersions(app.static_folder)
    app.extensions["static_versions"] = versions

    def send_static(filename: str, version: str | None = None) -> Response:
        """A static file: for good under its current version, else revalidated each time."""
        current = version is not None and version == versions.version(filename)
        response = send_from_directory(app.static_folder, filename, max_age=IMMUTABLE_FOR.total_seconds() if current else 0)
        if current:
            response.cache_control.public = True
            response.cache_control.immutable = True
        else:
            response.cache_control.no_cache = True
        # Read into memory (the files are small) and the file closed now: compression
        # then treats it as any answer, instead of wrapping an open file in a stream.
        file = response.response
        response.direct_passthrough = False
        response.make_sequence()
        getattr(file, "close", lambda: None)()
        return response

    # Flask's own rule (/static/<path:filename>) stays for unversioned names; this view
    # answers it and the versioned rule alike.
    app.view_functions["static"] = send_static
    app.add_url_rule(
        f"{app.static_url_path}/<string(length={VERSION_LENGTH}):version>/<path:filename>",
        endpoint="static",
        view_func=send_static,
    )

    @app.url_defaults
    def versioned_static_names(endpoint: str, values: dict) -> None:
        if endpoint == "static" and "version" not in values and "filename" in values:
            version = versions.version(values["filename"])
            if version is not None:
                values["version"] = version
