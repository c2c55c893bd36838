"""The station's database through SQLAlchemy Core: its tables (:mod:`.schema`), engines (:mod:`.engine`) and the
Alembic migrations shared with the central archive (:mod:`.migrate`)."""
