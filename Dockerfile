# syntax=docker/dockerfile:1
# The Shadowmesh service images, one target each:
#   docker build --target model-service   -t ghcr.io/shadowmesh/model-service:0.1.0 .
#   docker build --target app-service     -t ghcr.io/shadowmesh/app-service:0.1.0 .
#   docker build --target metrics-service -t ghcr.io/shadowmesh/metrics-service:0.1.0 .
# The build stage and every runtime stage use the same base, so the native addons compiled in the build stage
# (better-sqlite3) and the bundled ones (onnxruntime-node, glibc) match the Debian and Node they run on.
# `npm test` checks this file without a Docker engine: scripts/images/*.test.ts.

ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 compiles its addon when no prebuilt binary can be downloaded.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# onnxruntime-node's install script would download CUDA binaries; the CPU build ships inside the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip
# The manifests first: the dependency layer is rebuilt only when they change.
COPY package.json package-lock.json .npmrc ./
COPY gen/package.json gen/
COPY services/common/package.json services/common/
COPY services/model-service/package.json services/model-service/
COPY services/app-service/package.json services/app-service/
COPY services/metrics-service/package.json services/metrics-service/
COPY ml/package.json ml/
COPY web/package.json web/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.base.json ./
COPY gen/ gen/
COPY services/ services/
COPY ml/ ml/
COPY scripts/ scripts/
COPY web/ web/
COPY models/ models/
RUN npm run build
# /out/<service>/ becomes /app of that service's image: its code, its production dependencies only, read-only.
RUN node scripts/images/production-layout.mjs /out

# What the three images share: the base without npm, yarn and corepack (nothing runs them), production mode.
# uid 10001 has no home directory; HOME=/tmp (an emptyDir in the chart) gives libraries that cache under $HOME, such
# as onnxruntime's telemetry id, a writable place instead of a read-only root file system.
FROM ${NODE_IMAGE} AS runtime
ARG NODE_IMAGE
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
    /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
ENV NODE_ENV=production \
    HOME=/tmp
WORKDIR /app
LABEL org.opencontainers.image.source="https://github.com/shadowmesh/shadowmesh" \
      org.opencontainers.image.url="https://github.com/shadowmesh/shadowmesh" \
      org.opencontainers.image.vendor="Shadowmesh" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"

# gRPC PredictService (50051) and /metrics, /healthz, /readyz (9101). Serves /app/models/spam-v1 unless
# MODEL_SERVICE_MODEL_DIR names another bundled model (/app/models/spam-v2, /app/models/spam-lite); MODEL_SERVICE_ROLE=PRIMARY|SHADOW.
FROM runtime AS model-service
LABEL org.opencontainers.image.title="shadowmesh-model-service" \
      org.opencontainers.image.description="Shadowmesh model-service: serves a bundled ONNX spam classifier over gRPC as the primary or the shadow."
COPY --from=build /out/model-service/ /app/
ENV MODEL_SERVICE_HOST=0.0.0.0 \
    MODEL_SERVICE_MODEL_DIR=/app/models/spam-v1
EXPOSE 50051 9101
USER 10001:10001
ENTRYPOINT ["node", "services/model-service/dist/main.js"]

# HTTP 8080: Connect, gRPC-web and the web app (/app/web/dist); 9100: /metrics, /healthz, /readyz.
FROM runtime AS app-service
LABEL org.opencontainers.image.title="shadowmesh-app-service" \
      org.opencontainers.image.description="Shadowmesh app-service: the public Connect/gRPC-web API and the web app."
COPY --from=build /out/app-service/ /app/
ENV APP_SERVICE_HOST=0.0.0.0 \
    APP_SERVICE_WEB_DIR=/app/web/dist
EXPOSE 8080 9100
USER 10001:10001
ENTRYPOINT ["node", "services/app-service/dist/main.js"]

# gRPC MetricsService (50053) and /metrics, /healthz, /readyz (9103). The SQLite store lives in
# /var/lib/shadowmesh: mount a volume there (the directory belongs to 10001 so that a fresh volume does too).
FROM runtime AS metrics-service
LABEL org.opencontainers.image.title="shadowmesh-metrics-service" \
      org.opencontainers.image.description="Shadowmesh metrics-service: joins primary and shadow predictions, stores them in SQLite, reports a verdict."
COPY --from=build /out/metrics-service/ /app/
RUN mkdir -p /var/lib/shadowmesh && chown 10001:10001 /var/lib/shadowmesh
ENV METRICS_SERVICE_HOST=0.0.0.0 \
    METRICS_SERVICE_DATA_DIR=/var/lib/shadowmesh
VOLUME ["/var/lib/shadowmesh"]
EXPOSE 50053 9103
USER 10001:10001
ENTRYPOINT ["node", "services/metrics-service/dist/main.js"]
