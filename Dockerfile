# syntax=docker/dockerfile:1
# Base images are pinned to exact versions (a test checks it); pin their digests too
# where your registry policy asks for it (docker buildx imagetools inspect IMAGE).

# GraphiQL's assets from the npm registry, so GraphiQL works without internet. The
# versions are those graph/graphiql.py names (and pins by SRI hash); a test keeps the two
# lists equal. npm pack fetches exactly these package versions, without dependencies.
FROM node:22.16.0-bookworm-slim AS graphiql
WORKDIR /npm
RUN npm pack --silent react@18.2.0 react-dom@18.2.0 graphiql@3.8.3 @graphiql/plugin-explorer@1.0.2 \
 && mkdir /graphiql \
 && tar -xzOf react-18.2.0.tgz package/umd/react.production.min.js > /graphiql/react.production.min.js \
 && tar -xzOf react-dom-18.2.0.tgz package/umd/react-dom.production.min.js > /graphiql/react-dom.production.min.js \
 && tar -xzOf graphiql-3.8.3.tgz package/graphiql.min.css > /graphiql/graphiql.min.css \
 && tar -xzOf graphiql-3.8.3.tgz package/graphiql.min.js > /graphiql/graphiql.min.js \
 && tar -xzOf graphiql-plugin-explorer-1.0.2.tgz package/dist/style.css > /graphiql/plugin-explorer.css \
 && tar -xzOf graphiql-plugin-explorer-1.0.2.tgz package/dist/index.umd.js > /graphiql/plugin-explorer.umd.js

# Build stage: install marketgraph and its pinned dependencies into a virtualenv.
FROM python:3.11.13-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt README.md ./
COPY graph ./graph
COPY domain ./domain
COPY infra ./infra
RUN /opt/venv/bin/pip install --no-cache-dir -c constraints.txt .

# Runtime stage: only the virtualenv and the GraphiQL assets, run as an unprivileged user.
FROM python:3.11.13-slim-bookworm
RUN useradd --create-home --uid 10001 marketgraph
COPY --from=build /opt/venv /opt/venv
COPY --from=graphiql /graphiql /opt/graphiql
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MARKETGRAPH_ENV=production \
    MARKETGRAPH_DATA_DIR=/home/marketgraph/data \
    GRAPHIQL_ASSETS_DIR=/opt/graphiql
USER marketgraph
WORKDIR /home/marketgraph
EXPOSE 8000
# Liveness, not readiness: Docker (and Swarm, ECS, Nomad...) replace containers whose
# HEALTHCHECK fails, and restarting the API cannot fix an unreachable database; it only
# adds a restart storm to the outage. /health answers while the process serves requests;
# /health/ready (the database; Redis away only degrades it) is for the load balancer or a
# Kubernetes readinessProbe. Kubernetes ignores HEALTHCHECK: give it both probes.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
# Production needs DATABASE_URL (migrated with `marketgraph migrate`) and JWT_SECRET.
# TRUSTED_PROXIES names the load balancers whose X-Forwarded-For is believed.
CMD ["marketgraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
