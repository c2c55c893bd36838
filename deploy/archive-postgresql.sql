-- The archive's database on the plant's PostgreSQL (15 or newer), run once as the postgres user:
--   sudo -u postgres psql -f deploy/archive-postgresql.sql
-- then allow the stations' network in pg_hba.conf, e.g.
--   host  archive  station  10.20.0.0/16  scram-sha-256
--   host  archive  office   127.0.0.1/32  scram-sha-256
-- The first station to start creates the tables (Alembic; one at a time under an advisory lock).
CREATE ROLE station LOGIN PASSWORD '<a long random password>';
CREATE ROLE office LOGIN PASSWORD '<another one>';
CREATE DATABASE archive OWNER station;
\connect archive
ALTER DEFAULT PRIVILEGES FOR ROLE station IN SCHEMA public GRANT SELECT ON TABLES TO office;
GRANT CONNECT ON DATABASE archive TO office;
GRANT USAGE ON SCHEMA public TO office;
