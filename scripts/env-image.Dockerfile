# syntax=docker/dockerfile:1
# A worker or aggregator image with your own environment package installed in its venv
# (docs/own-environment.md). The build context is your package (the folder with pyproject.toml):
#
#   docker build -f env-image.Dockerfile --build-arg BASE=ghcr.io/esenas-fleet/worker:0.1.0 \
#     -t registry.example.com/me/my-env-worker:1 path/to/my-package
#
# and the same with BASE=ghcr.io/esenas-fleet/aggregator:0.1.0 (the aggregator builds the
# environment to learn its sizes). Offline and daemonless: `make env-image PKG=path/to/my-package`
# (scripts/build-env-image.sh) builds both with buildah, with the pinned wheels mounted at WHEELS.
ARG BASE=ghcr.io/esenas-fleet/worker:0.1.0
FROM ${BASE}
# A folder of wheels (a build-time mount) to install from with no index; empty: use the index.
ARG WHEELS=""
# root only to install into /opt/esenas (root-owned, as in the base); the image runs as 10001.
USER 0:0
COPY . /tmp/package
# Dependencies the image already has (gymnasium, numpy, mujoco) are kept as they are; pip check
# fails the build when the package needs other versions of them.
RUN if [ -n "$WHEELS" ]; then set -- --no-index --find-links "$WHEELS"; fi; \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 /opt/esenas/bin/pip install --quiet "$@" /tmp/package \
    && /opt/esenas/bin/pip check && rm -rf /tmp/package
USER 10001:10001
