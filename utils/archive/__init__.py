"""Central archive: many stations sync their images into one PostgreSQL database and one object store."""
