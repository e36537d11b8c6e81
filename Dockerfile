# syntax=docker/dockerfile:1
#
# bffgate container image.
#
#   docker build -t bffgate:0.1.0 .
#   docker run --read-only --tmpfs /tmp -p 8080:8080 -p 9090:9090 \
#     -v "$PWD/bffgate.toml:/etc/bffgate/bffgate.toml:ro" \
#     -e BFFGATE_OIDC__CLIENT_SECRET=... -e BFFGATE_COOKIE__SECRET_KEYS=... \
#     -e BFFGATE_SERVER__ADMIN_TOKEN=... -e BFFGATE_REDIS__URL=redis://redis:6379/0 bffgate:0.1.0
#
# The mounted config must listen on 0.0.0.0 (server.listen = "0.0.0.0:8080",
# server.admin_listen = "0.0.0.0:9090"); a non-loopback admin listener needs
# server.admin_token. Secrets come from the environment (BFFGATE_<SECTION>__<KEY>).
#
# tests/chart/test_dockerfile.py replays the builder stage's RUN steps in a fresh venv
# (no Docker engine needed): keep every path in the ARGs below and every command
# runnable by /bin/sh outside a container.

ARG PYTHON_IMAGE=python:3.11-slim
ARG VENV=/opt/bffgate

# --- builder: build the wheel, install it with its dependencies into a venv ---------------
FROM ${PYTHON_IMAGE} AS builder
ARG VENV
ARG SRC_DIR=/src
ARG WHEEL_DIR=/wheels
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Only pyproject.toml, README.md, LICENSE and src/ pass .dockerignore.
COPY . ${SRC_DIR}
# The venv has no pip of its own (the builder's pip installs into it with --python), so the
# final image carries no installer; pip byte-compiles the install, nothing is compiled later.
RUN python -m pip wheel --no-deps --wheel-dir "$WHEEL_DIR" "$SRC_DIR" \
 && python -m venv --without-pip "$VENV" \
 && wheel="$(echo "$WHEEL_DIR"/bffgate-*.whl)" \
 && python -m pip --python "$VENV/bin/python" install "${wheel}[speed]"

# --- final: the Python runtime and the venv, nothing else ---------------------------------
FROM ${PYTHON_IMAGE}
ARG VENV
ENV PATH="${VENV}/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 bffgate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin bffgate
COPY --from=builder ${VENV} ${VENV}
# Numeric, so Kubernetes can verify runAsNonRoot. Nothing is written at run time:
# the root filesystem can be read-only, with /tmp as an emptyDir/tmpfs.
USER 10001:10001
WORKDIR /
# 8080: public listener (server.listen); 9090: admin listener (/healthz /readyz /metrics).
EXPOSE 8080 9090
ENTRYPOINT ["bffgate"]
CMD ["serve", "--config", "/etc/bffgate/bffgate.toml"]
