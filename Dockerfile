# syntax=docker/dockerfile:1
# crosspose service image.
#
# GPU (default): CUDA 13 runtime + cuDNN 9, matching onnxruntime-gpu 1.31 (built against CUDA 13 and
# cuDNN 9) and torch's cu130 build (same CUDA and cuDNN majors).
# CPU variant:   docker build --build-arg VARIANT=cpu -t crosspose:cpu .
#
# First version (foundations): installs the package and runs `crosspose`. The live-service issue adds
# the model build at image build time, the health check on /api/v1/health and the exposed ports.

ARG VARIANT=gpu
ARG CUDA_BASE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04
ARG CPU_BASE=python:3.11-slim-bookworm

FROM ${CUDA_BASE} AS base-gpu
ENV TORCH_INDEX=https://download.pytorch.org/whl/cu130
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

FROM ${CPU_BASE} AS base-cpu
ENV TORCH_INDEX=https://download.pytorch.org/whl/cpu
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

# hadolint ignore=DL3006
FROM base-${VARIANT} AS runtime
ENV VIRTUAL_ENV=/opt/crosspose \
    PATH=/opt/crosspose/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CROSSPOSE_CACHE=/var/cache/crosspose
RUN python3 -m venv "$VIRTUAL_ENV" \
 && pip install --no-cache-dir --upgrade pip==25.3 \
 && pip install --no-cache-dir --index-url "$TORCH_INDEX" torch==2.13.0

WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install --no-cache-dir . \
 && useradd --create-home --uid 10001 --user-group crosspose \
 && mkdir -p "$CROSSPOSE_CACHE" /var/lib/crosspose \
 && chown crosspose:crosspose "$CROSSPOSE_CACHE" /var/lib/crosspose

USER 10001:10001
WORKDIR /var/lib/crosspose
ENTRYPOINT ["crosspose"]
CMD ["--help"]
