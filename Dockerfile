# artmatch: the API (`artmatch serve`), the batch worker and the one-shot `artmatch db upgrade`
# all run from this image; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ARTMATCH_HOME=/var/lib/artmatch

# Pango and a font: WeasyPrint renders the PDF match reports with them.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# CPU-only torch first, from PyTorch's own index, so pip does not pull the CUDA build.
RUN pip install torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /src
# Dependencies before sources: a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY kernel ./kernel
COPY models ./models
COPY storage ./storage
COPY engine ./engine
COPY ingest ./ingest
COPY service ./service
COPY cli ./cli
# psycopg: the PostgreSQL driver of ARTMATCH_STORAGE__DATABASE_URL=postgresql+psycopg://...
RUN pip install . "psycopg[binary]>=3.1" \
    && rm -rf /src

RUN useradd --system --uid 10001 --home-dir /var/lib/artmatch --create-home artmatch
USER artmatch
WORKDIR /var/lib/artmatch
VOLUME ["/var/lib/artmatch"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4)"

CMD ["artmatch", "serve", "--host", "0.0.0.0", "--port", "8000"]
