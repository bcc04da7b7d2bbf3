# One image for the four services, the read side, the lag exporter and cafctl; the command picks
# the process. Two stages: `build` installs the runtime lock (requirements/runtime.lock, `make
# lock`), every distribution checked against its hash, into /venv and adds our own wheel; the
# final stage is the base image with /venv alone. Neither the local stack (devstack/) nor any
# development tool is in it (.dockerignore keeps devstack/ out of the build context too).

# The base image of both stages, pinned by digest, in this one place. The digest is the OCI
# index (every platform) of python:3.11-slim-bookworm as published (Python 3.11.16, by public
# material); it could not be checked against a registry where it was written. Verify it, and
# move it (the base image's security fixes), where a registry is reachable:
#   docker buildx imagetools inspect python:3.11-slim-bookworm
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements/runtime.lock requirements/build.lock requirements/
# wheels only (nothing is compiled here); pip refuses any package or version not in the lock
RUN python -m venv /venv \
 && /venv/bin/pip install --require-hashes --only-binary=:all: -r requirements/runtime.lock
# the build backend (setuptools, locked too) lives outside /venv: the final stage never sees it
RUN python -m venv /build \
 && /build/bin/pip install --require-hashes --only-binary=:all: -r requirements/build.lock
COPY pyproject.toml ./
COPY caf_client caf_client
COPY caf_runtime caf_runtime
COPY cafctl cafctl
COPY schemas schemas
COPY services services
# our wheel holds only the packages copied above; `caf-devstack` is devstack's entry point
RUN /build/bin/pip wheel --no-deps --no-build-isolation --no-index --wheel-dir /wheels . \
 && /venv/bin/pip install --no-deps --no-index /wheels/*.whl \
 && rm /venv/bin/caf-devstack

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH CAF_HEALTH_HOST=0.0.0.0
COPY --from=build /venv /venv
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin caf
WORKDIR /app
USER 10001
EXPOSE 8080
CMD ["python", "-m", "services.intake"]
