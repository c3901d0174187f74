"""airflow-init's first step: refuse to initialise a deployment whose secrets are placeholders.

docker-compose.yaml already makes every secret mandatory (``${VAR:?...}``), but `.env.example` copied
unchanged defines each of them as a ``change-me-...`` placeholder, so Compose alone would start a
stack whose JWT secret (admin tokens), passwords and keys are printed in the repository. This check
runs before anything is created with them and names every value it refuses, with the command that
generates a good one.

    python docker/check_secrets.py        # exit 0, or 1 with one line per refused value on stderr

Each secret is read from the environment under its .env name (airflow-init's environment in
docker-compose.yaml). Standard library only: it runs in the image before any other step.
"""

from __future__ import annotations

import base64
import binascii
import os
import sys

PLACEHOLDER_PREFIX = "change-me"
# Shortest acceptable length per kind; token_urlsafe(32) gives 43 characters.
MIN_PASSWORD = 16
MIN_SIGNING_KEY = 32
GENERATE = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'
GENERATE_FERNET = 'python3 -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
FERNET = "fernet"

# .env name -> minimum length (or FERNET: a Fernet key, 32 bytes in URL-safe base64).
SECRETS: dict[str, int | str] = {
    "AIRFLOW_JWT_SECRET": MIN_SIGNING_KEY,
    "AIRFLOW_API_SECRET_KEY": MIN_SIGNING_KEY,
    "AIRFLOW_FERNET_KEY": FERNET,
    "_AIRFLOW_WWW_USER_PASSWORD": MIN_PASSWORD,
    "IMR_VIEWER_PASSWORD": MIN_PASSWORD,
    "POSTGRES_PASSWORD": MIN_PASSWORD,
    "WAREHOUSE_PASSWORD": MIN_PASSWORD,
    "IMR_APP_PASSWORD": MIN_PASSWORD,
    "IMR_UI_PASSWORD": MIN_PASSWORD,
    "MINIO_ROOT_PASSWORD": MIN_PASSWORD,
    "MINIO_READER_PASSWORD": MIN_PASSWORD,
    "REDIS_PASSWORD": MIN_PASSWORD,
}


def _is_fernet_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode())) == 32
    except (binascii.Error, ValueError):
        return False


def problem(name: str, value: str | None) -> str | None:
    """Why `value` is refused as the secret `name`, or None if it is acceptable.

    :param name: the secret's .env name (a key of SECRETS)
    :param value: its value from the environment, None if unset
    :return: a one-line reason that names the variable and says how to generate a value
    """
    kind = SECRETS[name]
    how = GENERATE_FERNET if kind == FERNET else GENERATE
    if not value:
        return f"{name} is empty or not set: generate one with {how}"
    if value.lower().startswith(PLACEHOLDER_PREFIX):
        return f"{name} is still the placeholder {value!r} from .env.example: generate one with {how}"
    if kind == FERNET:
        if not _is_fernet_key(value):
            return f"{name} is not a Fernet key (32 bytes, URL-safe base64): generate one with {how}"
    elif len(value) < int(kind):
        return f"{name} is shorter than {kind} characters: generate one with {how}"
    return None


def problems(env: dict[str, str]) -> list[str]:
    """Every refused secret in `env`, in SECRETS order.

    :param env: the environment to check (os.environ)
    :return: one reason per refused secret; empty when all are acceptable
    """
    return [p for name in SECRETS if (p := problem(name, env.get(name))) is not None]


def main() -> int:
    found = problems(dict(os.environ))
    for line in found:
        print(f"airflow-init: {line}", file=sys.stderr)
    if found:
        print(
            f"airflow-init: refusing to start with {len(found)} unsafe secret(s); set them in .env "
            "(docs/security.md) and run `docker compose up -d` again",
            file=sys.stderr,
        )
        return 1
    print(f"airflow-init: {len(SECRETS)} secrets set, none a placeholder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
