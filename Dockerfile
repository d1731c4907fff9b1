# syntax=docker/dockerfile:1
# Node.js 26 is the current LTS line ("lithium"). Debian slim (glibc), not Alpine: musl's DNS
# resolver and allocator have surprised Node services in production.
ARG NODE_IMAGE=node:26-trixie-slim

# Production dependencies only, installed from the lock file. `--omit=optional` as well: the only
# package it drops is TypeScript, an optional peer of @nestjs/swagger that npm would otherwise
# install (it is also a devDependency); nothing reads it at run time.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund

# Full toolchain: compiles the gateway (dist/) and the local fake vendor (dist-dev/).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json tsconfig.dev.json nest-cli.json ./
COPY src ./src
COPY test ./test
RUN npm run build && npm run build:dev

# The fake ZIM server for docker compose; never deployed. Uses Node built-ins only.
FROM ${NODE_IMAGE} AS fake-zim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/dist-dev ./dist-dev
USER node
EXPOSE 8089
CMD ["node", "dist-dev/fake-zim/main.js"]

# The gateway image (the default target). No secret is baked in: configuration comes from the
# environment and mounted files at run time.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/package.json ./
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
# Exec form: node is PID 1 (no shell in between) and receives SIGTERM itself. The gateway handles
# it (src/lifecycle/graceful-shutdown.ts): readiness fails, SHUTDOWN_GRACE_MS, drain, exit 0.
# It spawns no children, so no init process is needed to reap them. Stack traces point at the
# TypeScript sources (dist/ carries its source maps). The preload starts OpenTelemetry tracing
# before the application when an OTLP endpoint is set, and does nothing otherwise.
STOPSIGNAL SIGTERM
CMD ["node", "--enable-source-maps", "--import", "./dist/tracing/preload.js", "dist/main.js"]
