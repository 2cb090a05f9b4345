"""Client for PostMetric's visitor API: HTTP, typed models, typed errors, cache.

Plain Python: no Flask, no request state. Importing it starts nothing. Import from
the modules themselves: ``client``, ``models``, ``errors``, ``budget``, ``cache``.
"""
