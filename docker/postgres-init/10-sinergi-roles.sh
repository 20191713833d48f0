#!/bin/sh
# Run once by the postgres image, as its superuser, when the data volume is first initialised:
# the owner role (migrations) and the service role (the API), neither a superuser, and the
# database the owner owns. db/roles.py decides, at every `sinergi migrate`, what the service may
# do in it. The same statements as the README's "Database roles".
set -eu
psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner_password="$SINERGI_OWNER_PASSWORD" -v service_password="$SINERGI_SERVICE_PASSWORD" <<'SQL'
CREATE ROLE sinergi_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE sinergi_service LOGIN PASSWORD :'service_password';
CREATE DATABASE sinergi OWNER sinergi_owner;
REVOKE ALL ON DATABASE sinergi FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE sinergi TO sinergi_service;
SQL
