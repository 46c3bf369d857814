"""fedgate's versioned schema migrations (Alembic), shipped inside the package.

``env.py`` runs them on the connection :mod:`gateway.db.migrate` provides; ``versions/`` holds one
script per schema revision. Write a new one with ``alembic revision`` semantics by hand: never edit
a released revision, add the next one.
"""
