"""What docker/ ships: the image's install steps, and a compose file that validates.

The wheel test repeats docker/Dockerfile's steps outside Docker (no daemon is needed): build the
wheel and export the locked requirements with uv, then a plain `pip install` into a fresh virtual
environment, and run the installed `sinergi` from outside the source tree. Keep it in step with
the Dockerfile. It needs PyPI (pip's cache makes repeats quick) and takes a minute or so.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from db import embedded
from schema.build import sdl
from sinergi.app import STOP_SECONDS
from sinergi.settings import Settings
from tests.support import tools
from tests.support.databases import drop_database, with_database

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker" / "compose.yaml"
SETTINGS = ROOT / "sinergi" / "settings.py"
REQUIRED = {
    "SINERGI_SECRETS": "/srv/sinergi-secrets",
    "SINERGI_ISSUER": "https://sinergi.example.go.id",
}
SECRET_FILES = {
    "postgres_password": "postgres.password",
    "owner_password": "owner.password",
    "service_password": "service.password",
    "audit_key": "audit.key",
}
POSTGRES_CAPABILITIES = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}
"""What the postgres image's entrypoint does as root before it becomes the postgres user: chown
and chmod its directories, find over the data directory, read the superuser's password file,
gosu. Nothing else of a container's default capabilities."""


def _uv() -> str:
    found = ROOT / ".tools" / "bin" / "uv"
    return str(found) if found.exists() else (shutil.which("uv") or pytest.fail("uv not found"))


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _clean_env() -> dict[str, str]:
    """The environment without this test run's virtual environment leaking into the new one."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_the_image_install_steps_give_a_working_sinergi(tmp_path: Path, server_url: str) -> None:
    dist = tmp_path / "dist"
    _run(_uv(), "build", "--wheel", "--out-dir", dist, cwd=ROOT)
    requirements = _run(
        _uv(),
        "export",
        "--frozen",
        "--no-dev",
        "--no-emit-project",
        "--format",
        "requirements-txt",
        cwd=ROOT,
    )
    (dist / "requirements.txt").write_text(requirements)
    (wheel,) = dist.glob("sinergi-*.whl")

    venv = tmp_path / "venv"
    env = _clean_env()
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path, env=env)
    pip, sinergi = venv / "bin" / "pip", venv / "bin" / "sinergi"
    _run(pip, "install", "-r", dist / "requirements.txt", cwd=tmp_path, env=env)
    _run(pip, "install", "--no-deps", wheel, cwd=tmp_path, env=env)

    assert "serve" in _run(sinergi, "--help", cwd=tmp_path, env=env)
    # The installed package serves the schema the source does (test_schema_sdl ties that to the
    # committed schema.graphql).
    assert _run(sinergi, "schema", cwd=tmp_path, env=env) == sdl()
    # GraphiQL's page, files and their licences ship inside the wheel: no CDN, even offline.
    shipped = (
        "import json; from sinergi.graphiql import ASSETS_DIR as d; "
        "assets = json.loads((d / 'assets.json').read_text())['assets']; "
        "print(all((d / a[k]).is_file() for a in assets for k in ('file', 'licence'))"
        " and (d.parent / 'graphiql.html').is_file())"
    )
    assert _run(venv / "bin" / "python", "-c", shipped, cwd=tmp_path, env=env).strip() == "True"

    # Migrations and reference data ship inside the wheel: the compose `migrate` service runs this.
    name = f"sinergi_wheel_{uuid.uuid4().hex[:8]}"
    asyncio.run(embedded.ensure_database(server_url, name))
    try:
        env["DATABASE_URL"] = with_database(server_url, name)
        assert "up to date" in _run(sinergi, "migrate", cwd=tmp_path, env=env)
    finally:
        asyncio.run(drop_database(server_url, name))


def _compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) when present, else `docker-compose` (v1, Debian's package)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    found = shutil.which("docker-compose")
    return [found] if found else None


def test_compose_file_validates_with_compose_itself() -> None:
    command = _compose_command()
    if command is None:
        tools.missing("neither `docker compose` nor `docker-compose` is installed on this machine")
    env = {**os.environ, **REQUIRED}
    resolved = yaml.safe_load(_run(*command, "-f", COMPOSE, "config", cwd=ROOT, env=env))
    # `import` is in a profile, which some versions of compose leave out of `config`.
    assert set(resolved["services"]) - {"import"} == {"postgres", "migrate", "api"}
    for required in REQUIRED:
        missing = {key: value for key, value in env.items() if key != required}
        refused = subprocess.run(
            [*command, "-f", str(COMPOSE), "config"],
            cwd=ROOT,
            env=missing,
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode != 0
        assert required in refused.stdout + refused.stderr


def test_compose_file_has_the_deployment_shape() -> None:
    """Checked on every machine, compose installed or not: the shape operators rely on."""
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    postgres, migrate, api = services["postgres"], services["migrate"], services["api"]
    assert ":" in postgres["image"]
    assert not postgres["image"].endswith(":latest")
    assert "healthcheck" in postgres
    # Its log keeps to each error's message: the DETAIL would hold a failing row's personal data.
    assert postgres["command"] == ["postgres", "-c", "log_error_verbosity=terse"]
    assert migrate["command"] == ["sinergi", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "--workers" in api["command"]
    # Two roles: the owner migrates; the API, as the service role, never holds the owner's URL.
    assert "sinergi_owner" in migrate["environment"]["DATABASE_OWNER_URL"]
    assert "sinergi_service" in migrate["environment"]["DATABASE_URL"]
    assert "sinergi_service" in api["environment"]["DATABASE_URL"]
    assert "DATABASE_OWNER_URL" not in api["environment"]
    assert "SINERGI_UNSAFE_PRIVILEGED_ROLE" not in api["environment"]
    assert sorted(api["secrets"]) == ["audit_key", "service_password"]
    # The import signs its audit entry with the API's key (sinergi/audit_key.py of_its_servers),
    # as the owner, and runs only when asked (`run`), never with `up`.
    importer = services["import"]
    assert importer["profiles"] == ["tools"]
    assert importer["command"][:3] == ["sinergi", "import", "msmes"]
    assert sorted(importer["secrets"]) == ["audit_key", "owner_password", "service_password"]
    assert importer["environment"]["SINERGI_AUDIT_KEY_FILE"] == "/run/secrets/audit_key"
    assert "sinergi_owner" in importer["environment"]["DATABASE_OWNER_URL"]
    assert "audit_key" not in migrate["secrets"]
    init = ROOT / "docker" / "postgres-init" / "10-sinergi-roles.sh"
    assert "./postgres-init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    assert "CREATE ROLE sinergi_service LOGIN" in init.read_text()
    text = COMPOSE.read_text()
    for secret in REQUIRED:
        assert f"${{{secret}:?" in text


def test_postgres_is_healthy_only_once_it_listens_on_tcp() -> None:
    """The image's entrypoint first runs a temporary server for the init scripts, listening on
    its Unix socket alone: `pg_isready` on the socket calls that one ready, and `migrate`,
    which connects over TCP, then fails on a fresh volume."""
    compose = yaml.safe_load(COMPOSE.read_text())
    test = compose["services"]["postgres"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    assert test[1].split()[:3] == ["pg_isready", "-h", "127.0.0.1"]


def test_compose_holds_every_container_to_least_privilege() -> None:
    """No container keeps a capability it does not use or may gain one through a setuid
    binary; the API's image is read-only but for the volume and a small /tmp."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name, service in services.items():
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert set(service.get("cap_add", [])) <= POSTGRES_CAPABILITIES, name
    assert "cap_add" not in services["api"]
    assert "cap_add" not in services["migrate"]
    assert "cap_add" not in services["import"]
    api = services["api"]
    assert api["read_only"] is True
    assert [mount.split(":")[0] for mount in api["tmpfs"]] == ["/tmp"]  # noqa: S108
    assert api["volumes"] == ["sinergi-home:/var/lib/sinergi"]


def test_compose_hands_every_password_over_as_a_secret_file() -> None:
    """`docker inspect` shows a container's environment: no password is in it, neither as a
    variable nor inside a URL; each is a file under /run/secrets that the container is given,
    read by the postgres image (POSTGRES_PASSWORD_FILE), the init script and Sinergi."""
    compose = yaml.safe_load(COMPOSE.read_text())
    assert {
        name: secret["file"].rsplit("/", 1)[1] for name, secret in compose["secrets"].items()
    } == SECRET_FILES
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("${SINERGI_SECRETS:?")
    for name, service in compose["services"].items():
        environment = service["environment"]
        for variable, value in environment.items():
            assert not variable.endswith("_PASSWORD"), (name, variable)
            if str(value).startswith("postgresql://"):
                assert make_url(value).password is None, (name, variable)
            if variable.endswith("_FILE"):
                assert value.startswith("/run/secrets/"), (name, variable)
                assert value.removeprefix("/run/secrets/") in service["secrets"], (name, variable)
    migrate, api = compose["services"]["migrate"], compose["services"]["api"]
    assert migrate["environment"]["DATABASE_OWNER_PASSWORD_FILE"].endswith("/owner_password")
    assert migrate["environment"]["DATABASE_PASSWORD_FILE"].endswith("/service_password")
    assert api["environment"]["DATABASE_PASSWORD_FILE"].endswith("/service_password")
    assert "owner_password" not in api["secrets"]
    init = (ROOT / "docker" / "postgres-init" / "10-sinergi-roles.sh").read_text()
    assert '"$SINERGI_OWNER_PASSWORD_FILE"' in init
    assert '"$SINERGI_SERVICE_PASSWORD_FILE"' in init


def test_the_init_script_keeps_the_passwords_off_psqls_command_line(tmp_path: Path) -> None:
    """Given as `-v owner_password=…`, both passwords were in psql's argv, which any user of
    the host reads with `ps`: psql reads the secrets' files itself. The psql here is a
    stand-in that records its arguments and the script it is handed."""
    passwords = {"owner": "owner-pw-8d1e", "service": "service-pw-27c4"}
    for role, password in passwords.items():
        (tmp_path / role).write_text(password + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    psql = bin_dir / "psql"
    psql.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\ncat > {tmp_path}/stdin\n')
    psql.chmod(0o755)
    subprocess.run(
        ["sh", str(ROOT / "docker" / "postgres-init" / "10-sinergi-roles.sh")],
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "POSTGRES_USER": "postgres",
            "SINERGI_OWNER_PASSWORD_FILE": str(tmp_path / "owner"),
            "SINERGI_SERVICE_PASSWORD_FILE": str(tmp_path / "service"),
        },
        check=True,
        timeout=30,
    )
    argv, script = (tmp_path / "argv").read_text(), (tmp_path / "stdin").read_text()
    assert "--username" in argv  # the stand-in ran
    for password in passwords.values():
        assert password not in argv
        assert password not in script  # nor expanded into the script by the shell
    for role in ("owner", "service"):
        variable = f"SINERGI_{role.upper()}_PASSWORD_FILE"
        assert f'\\set {role}_password `sh -c "$SINERGI_PASSWORD_IN" sh "${variable}"`' in script


INIT = ROOT / "docker" / "postgres-init" / "10-sinergi-roles.sh"


def _run_init(tmp_path: Path, psql_body: str, files: dict[str, str | None]) -> tuple[int, str]:
    """The init script with `psql_body` as psql and the two *_FILE variables from `files`
    (None: unset), as the postgres image runs it. Its exit status and stderr."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "psql").write_text(f"#!/bin/sh\n{psql_body}\n")
    (bin_dir / "psql").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "POSTGRES_USER": "postgres"}
    env |= {name: value for name, value in files.items() if value is not None}
    done = subprocess.run(
        ["sh", str(INIT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    ("owner", "service", "named"),
    [
        (None, "service", "SINERGI_OWNER_PASSWORD_FILE is not set"),
        ("owner", None, "SINERGI_SERVICE_PASSWORD_FILE is not set"),
        ("missing", "service", "SINERGI_OWNER_PASSWORD_FILE: {missing} is missing"),
        ("owner", "empty", "SINERGI_SERVICE_PASSWORD_FILE: {empty} is missing"),
        ("newlines", "service", "SINERGI_OWNER_PASSWORD_FILE: {newlines} is missing"),
        ("owner", "crlf", "SINERGI_SERVICE_PASSWORD_FILE: {crlf} is missing"),
    ],
)
def test_the_init_script_stops_without_a_password_to_give_a_role(
    tmp_path: Path, owner: str | None, service: str | None, named: str
) -> None:
    """psql ignores a backquoted command's failure: an unset variable or a missing or empty file
    made the roles with an empty password, and the init ended in success. The script stops
    first (exit 1), psql never run, naming the variable; an empty password is refused as
    Sinergi refuses it (sinergi/settings.py), a file of line ends alone too (Windows' too)."""
    contents = {
        "owner": "owner-pw\n", "service": "service-pw\n", "empty": "", "newlines": "\n\n",
        "crlf": "\r\n\r\n",
    }  # fmt: skip
    for name, text in contents.items():
        (tmp_path / name).write_bytes(text.encode())
    paths = {name: str(tmp_path / name) for name in [*contents, "missing"]}
    code, err = _run_init(
        tmp_path,
        f"touch {tmp_path}/psql-ran",
        {
            "SINERGI_OWNER_PASSWORD_FILE": None if owner is None else paths[owner],
            "SINERGI_SERVICE_PASSWORD_FILE": None if service is None else paths[service],
        },
    )
    assert code == 1
    assert named.format(**paths) in err
    assert not (tmp_path / "psql-ran").exists()


def test_the_init_script_gives_each_role_the_password_sinergi_sends(
    tmp_path: Path, server_url: str
) -> None:
    """The real psql, on the test server, runs the script's own \\set lines and shows what each
    role would be given (creating no role): every line end at the files' end stripped, as
    Sinergi strips them (a file ending in two newlines gave the role a password ending in one;
    a file saved on Windows, its carriage return), and nothing else touched."""
    files = {
        "owner": "owner pw 'x' $HOME\n\n",
        "service": "\tservice-pw\n",
        "windows": "windows\rpw\r\n\r\n",
    }
    psql = shutil.which("psql")
    if psql is None:
        tools.missing("no psql: apt-get install postgresql-client")
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode())
    shown = {}
    for owner, service in (("owner", "service"), ("windows", "service")):
        ran = tmp_path / f"{owner}-{service}"
        ran.mkdir()
        # The script's psql: its \\set lines alone, then the values as psql literals.
        body = (
            f"{{ grep '^\\\\set '; printf '%s\\n'"
            " \"\\\\echo :'owner_password' :'service_password'\"; }"
            f" | {psql} --no-psqlrc -v ON_ERROR_STOP=1 '{server_url}' > {ran}/out"
        )
        code, err = _run_init(
            ran,
            body,
            {
                "SINERGI_OWNER_PASSWORD_FILE": str(tmp_path / owner),
                "SINERGI_SERVICE_PASSWORD_FILE": str(tmp_path / service),
            },
        )
        assert (code, err) == (0, "")
        shown[owner] = (ran / "out").read_bytes().decode()  # its \r as written
    sent = {
        name: Settings.from_env(
            {
                "DATABASE_URL": "postgresql://sinergi_service@db/sinergi",
                "DATABASE_PASSWORD_FILE": str(tmp_path / name),
            }
        ).database_url
        for name in files
    }
    assert {name: make_url(url).password for name, url in sent.items()} == {
        "owner": "owner pw 'x' $HOME",
        "service": "\tservice-pw",
        "windows": "windows\rpw",
    }
    assert shown == {
        "owner": "'owner pw ''x'' $HOME' '\tservice-pw'\n",
        "windows": "'windows\rpw' '\tservice-pw'\n",
    }


# Settings the compose file fixes for the API, or keeps from it on purpose.
NOT_PASSED_ON = {
    "DATABASE_URL",  # the service role's, built from its password
    "DATABASE_OWNER_URL",  # the API never holds the owner's credentials
    "DATABASE_OWNER_PASSWORD_FILE",  # nor the owner's password
    "DATABASE_PASSWORD_FILE",  # the service's password, a secret file
    "DATABASE_REPLICA_PASSWORD_FILE",  # a replica of another role: its secret added here
    "SINERGI_UNSAFE_PRIVILEGED_ROLE",  # never in a deployment
    "SINERGI_ENV",  # production
    "SINERGI_HOME",  # the volume
    "SINERGI_AUDIT_KEY",  # the key comes as a secret file
    "SINERGI_AUDIT_KEY_FILE",  # where that secret is mounted
    "SINERGI_INTROSPECTION",  # gone: serve stops when it is set
    "PROMETHEUS_MULTIPROC_DIR",  # serve's own, per start
    "SINERGI_DEV",  # serve sets it from --dev, never in a deployment
}


READ_BY_THE_EXPORTER = {
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
}
"""Settings the README says apply to traces that OpenTelemetry's exporter reads itself, not
sinergi/settings.py (sinergi/tracing.py); each empty keeps its default there too."""


def test_compose_passes_every_other_setting_on_to_the_api() -> None:
    """An operator sets any setting of the README's table in the environment compose runs in,
    without editing the file; unset, each passes on empty, which keeps its default."""
    read = set(
        re.findall(r'"((?:SINERGI|DATABASE|OTEL|PROMETHEUS)_[A-Z_]+)"', SETTINGS.read_text())
    )
    api = yaml.safe_load(COMPOSE.read_text())["services"]["api"]["environment"]
    assert read - NOT_PASSED_ON <= set(api), sorted(read - NOT_PASSED_ON - set(api))
    for name in sorted(READ_BY_THE_EXPORTER):
        assert api.get(name) == f"${{{name}:-}}", f"{name} is not passed on to the API"
    # Passed on empty, uvicorn would trust no proxy, not its default, the loopback.
    assert api["FORWARDED_ALLOW_IPS"] == "${FORWARDED_ALLOW_IPS:-127.0.0.1,::1}"
    passed_empty = {
        name for name, value in api.items() if value == f"${{{name}:-}}" and name in read
    }
    assert len(passed_empty) > 30
    defaults = Settings.from_env({})
    for name in sorted(passed_empty):
        assert Settings.from_env({name: ""}) == defaults, f"{name}= does not keep its default"


def test_dockerfile_is_multi_stage_non_root_and_health_checked() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    stages = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2
    assert "USER 10001" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    assert "/healthz" in dockerfile
    # The audit key and checkpoints default to the home: under /tmp a plain `docker run` lost the
    # key with the container. The home is the image's user's own, where a volume is mounted.
    assert re.search(r"\bSINERGI_HOME=/var/lib/sinergi\b", dockerfile)
    assert "install -d -o 10001 -m 0700 /var/lib/sinergi" in dockerfile
    api = yaml.safe_load(COMPOSE.read_text())["services"]["api"]
    assert api["environment"]["SINERGI_HOME"] == "/var/lib/sinergi"
    for step in ("uv build --wheel", "uv export --frozen --no-dev", "pip install --no-cache-dir"):
        assert step in dockerfile, f"the Dockerfile no longer runs {step!r}: update this test too"


def test_compose_v1_is_told_to_build_with_buildkit() -> None:
    """`RUN --mount` needs BuildKit, which docker-compose 1.29 uses only when asked: where the
    compose file and the README promise v1, they say how."""
    assert "RUN --mount" in (ROOT / "docker" / "Dockerfile").read_text()
    asked = "DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1"
    assert asked in COMPOSE.read_text()
    assert asked in (ROOT / "README.md").read_text()


def _default_seconds(value: str) -> int:
    """The default seconds of a compose `${NAME:-default}` (or a bare value), `40s` or `40`."""
    default = re.fullmatch(r"\$\{\w+:-(\d+)s?\}|(\d+)s?", str(value))
    assert default is not None, value
    return int(default[1] or default[2])


def test_compose_gives_the_api_time_to_stop_past_its_shutdown_grace() -> None:
    """Docker sends SIGKILL at `stop_grace_period`: a fixed 40 s cut short a SINERGI_SHUTDOWN_GRACE
    set to 60, its requests in flight then dropped unanswered. The period is the operator's to
    set beside the grace, and by default outlasts it and the app's own stop (sinergi/app.py's
    STOP_SECONDS, twice: its background work, then its connections)."""
    api = yaml.safe_load(COMPOSE.read_text())["services"]["api"]
    period = api["stop_grace_period"]
    assert period.startswith("${SINERGI_STOP_GRACE_PERIOD:-"), period
    grace = _default_seconds(api["environment"]["SINERGI_SHUTDOWN_GRACE"])
    assert _default_seconds(period) > grace + 2 * STOP_SECONDS
