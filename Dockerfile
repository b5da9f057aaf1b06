# syntax=docker/dockerfile:1
# Build stage: install marketgraph and its pinned dependencies into a virtualenv.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt README.md ./
COPY graph ./graph
COPY domain ./domain
COPY infra ./infra
RUN /opt/venv/bin/pip install --no-cache-dir -c constraints.txt .

# Runtime stage: only the virtualenv, run as an unprivileged user.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 marketgraph
COPY --from=build /opt/venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MARKETGRAPH_ENV=production \
    MARKETGRAPH_DATA_DIR=/home/marketgraph/data
USER marketgraph
WORKDIR /home/marketgraph
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"
# Production needs DATABASE_URL (migrated with `marketgraph migrate`) and JWT_SECRET.
# TRUSTED_PROXIES names the load balancers whose X-Forwarded-For is believed.
CMD ["marketgraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
