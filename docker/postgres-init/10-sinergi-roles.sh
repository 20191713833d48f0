#!/bin/sh
# Run once by the postgres image, as its superuser, when the data volume is first initialised:
# the owner role (migrations) and the service role (the API), neither a superuser, and the
# database the owner owns. db/roles.py decides, at every `sinergi migrate`, what the service may
# do in it. The same statements as the README's "Database roles".
# The passwords are read from the secrets' files (docker/compose.yaml), the ones Sinergi reads
# them from, so no environment variable holds them. A file's password is all it holds but the
# line ends (\n, \r: a file saved on Windows ends in \r\n) at its end, as Sinergi reads it
# (sinergi/settings.py): SINERGI_PASSWORD_IN, a command of the shell's builtins but cat, prints
# it, without a newline (psql's backquote strips one, Sinergi all).
# psql reads each file itself (\set with a backquoted command): given as `-v name=password`, they
# were on psql's command line, which any user of the host reads with `ps`; printf and `[` are
# the shell's builtins, so the password is on no command line either.
# Each file is checked first: psql ignores a backquoted command's failure, and a missing file or
# an unset variable would make the roles with an empty password and end the init in success.
set -eu
# shellcheck disable=SC2016 # expanded by the sh it is given to, with the file as $1
SINERGI_PASSWORD_IN='password=$(cat "$1") && while [ "${password%"$(printf "\r")"}" != "$password" ]; do password=$(printf %s "${password%?}"); done && printf %s "$password"'
export SINERGI_PASSWORD_IN
for variable in SINERGI_OWNER_PASSWORD_FILE SINERGI_SERVICE_PASSWORD_FILE; do
	eval "file=\${$variable:-}"
	if [ -z "$file" ]; then
		echo "10-sinergi-roles.sh: $variable is not set: it names the role's password file" >&2
		exit 1
	fi
	if [ ! -r "$file" ] || [ -z "$(sh -c "$SINERGI_PASSWORD_IN" sh "$file")" ]; then
		echo "10-sinergi-roles.sh: $variable: $file is missing, unreadable or empty" >&2
		exit 1
	fi
done
psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\set owner_password `sh -c "$SINERGI_PASSWORD_IN" sh "$SINERGI_OWNER_PASSWORD_FILE"`
\set service_password `sh -c "$SINERGI_PASSWORD_IN" sh "$SINERGI_SERVICE_PASSWORD_FILE"`
CREATE ROLE sinergi_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE sinergi_service LOGIN PASSWORD :'service_password';
CREATE DATABASE sinergi OWNER sinergi_owner;
REVOKE ALL ON DATABASE sinergi FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE sinergi TO sinergi_service;
SQL
