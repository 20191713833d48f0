#!/bin/sh
# Run once by the postgres image, as its superuser, when the data volume is first initialised:
# the owner role (migrations) and the service role (the API), neither a superuser, and the
# database the owner owns. db/roles.py decides, at every `sinergi migrate`, what the service may
# do in it. The same statements as the README's "Database roles".
# The passwords are read from the secrets' files (docker/compose.yaml), the ones Sinergi reads
# them from, so no environment variable holds them; a newline at a file's end is not part of it.
# psql reads each file itself (\set with a backquoted `cat`): given as `-v name=password`, they
# were on psql's command line, which any user of the host reads with `ps`.
set -eu
psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\set owner_password `cat "$SINERGI_OWNER_PASSWORD_FILE"`
\set service_password `cat "$SINERGI_SERVICE_PASSWORD_FILE"`
CREATE ROLE sinergi_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE sinergi_service LOGIN PASSWORD :'service_password';
CREATE DATABASE sinergi OWNER sinergi_owner;
REVOKE ALL ON DATABASE sinergi FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE sinergi TO sinergi_service;
SQL
