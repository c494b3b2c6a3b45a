# crosspose service image (BuildKit's built-in Dockerfile frontend: no `# syntax=` line, so building
# needs no Docker Hub access beyond the base images; deploy/offline-base.sh makes the CPU one locally).
#
# GPU (default): CUDA 13 runtime + cuDNN 9, matching onnxruntime-gpu 1.31 (built against CUDA 13 and
# cuDNN 9) and torch's cu130 build (same CUDA and cuDNN majors: CUDA 13, cuDNN 9).
# CPU variant:   docker build --build-arg VARIANT=cpu -t crosspose:cpu .
#
# The network is built and exported at image build time (needs PyPI for the mediapipe wheel), so the
# container starts offline. It runs `crosspose serve --config $CROSSPOSE_CONFIG` (deploy/entrypoint.sh);
# any arguments run another crosspose command instead (e.g. `grab …` on a camera host).
# Ports: 8000 = API + viewer, 5555 = frames from remote grabbers (bus.frames_endpoint). See deploy/README.md.
#
# Package sources (studios with a local mirror, see deploy/README.md "Building without Docker Hub"):
#   TORCH_INDEX_URL   replaces the variant's torch index (GPU: download.pytorch.org/whl/cu130, CPU: …/cpu)
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_TRUSTED_HOST   read by every pip run of the
#                     build (torch, the package, and the mediapipe wheel of `crosspose model build`)
# They are build arguments only: unset, the build uses PyPI and the index above; none ends up in the image.

ARG VARIANT=gpu
ARG CUDA_BASE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04
ARG CPU_BASE=python:3.11-slim-bookworm

FROM ${CUDA_BASE} AS base-gpu
ENV TORCH_INDEX=https://download.pytorch.org/whl/cu130
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip libgl1 libglib2.0-0 tini \
 && rm -rf /var/lib/apt/lists/*

FROM ${CPU_BASE} AS base-cpu
ENV TORCH_INDEX=https://download.pytorch.org/whl/cpu
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libglib2.0-0 tini \
 && rm -rf /var/lib/apt/lists/*

# hadolint ignore=DL3006
FROM base-${VARIANT} AS runtime
ENV VIRTUAL_ENV=/opt/crosspose \
    PATH=/opt/crosspose/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CROSSPOSE_CACHE=/var/cache/crosspose
ARG TORCH_INDEX_URL
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_TRUSTED_HOST
RUN python3 -m venv "$VIRTUAL_ENV" \
 && pip install --no-cache-dir --upgrade pip==25.3 \
 && pip install --no-cache-dir --index-url "${TORCH_INDEX_URL:-$TORCH_INDEX}" torch==2.13.0

WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY models ./models
COPY deploy/entrypoint.sh /usr/local/bin/crosspose-entrypoint
COPY deploy/healthcheck.py /usr/local/bin/crosspose-healthcheck
RUN pip install --no-cache-dir . \
 && useradd --create-home --uid 10001 --user-group crosspose \
 && mkdir -p "$CROSSPOSE_CACHE" /var/lib/crosspose/calibration/store /var/lib/crosspose/takes /etc/crosspose \
 && chown -R crosspose:crosspose "$CROSSPOSE_CACHE" /var/lib/crosspose /src/models \
 && chmod 0755 /usr/local/bin/crosspose-entrypoint /usr/local/bin/crosspose-healthcheck

USER 10001:10001
# BlazePose rebuilt from the mediapipe wheel, then backbone + fusion exported as one ONNX file into
# $CROSSPOSE_CACHE/models (where `inference.model: null` finds it), the person detector beside it.
# The mediapipe wheel and its extracted .tflite files are only the build's input: dropped (43 MB).
RUN crosspose model build \
 && if [ -f models/fusion_weights.pt ]; then set -- --fusion-weights models/fusion_weights.pt; fi \
 && crosspose model export --card "$CROSSPOSE_CACHE/models/crosspose_fusion.json" "$@" \
 && rm -rf "$CROSSPOSE_CACHE/pypi" "$CROSSPOSE_CACHE/extracted"

ENV CROSSPOSE_CONFIG=/etc/crosspose/config.yaml \
    CROSSPOSE__API__HOST=0.0.0.0
WORKDIR /var/lib/crosspose
EXPOSE 8000 5555
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["crosspose-healthcheck"]
ENTRYPOINT ["crosspose-entrypoint"]
