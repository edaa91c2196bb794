# One image for every carewatch process; docker-compose.yml picks the process with `command`.
# Two stages: the first installs dependencies, compiles the processes' TypeScript to dist/
# (tsconfig.build.json) and prunes the dependencies to production ones; the runtime stage gets the
# compiled JavaScript and production dependencies only (no TypeScript, tsx, vitest or playwright-core)
# and runs as the `node` user. Plain `node` on compiled files starts a process in about half the time
# of a TypeScript loader (bench/README.md "Production build"): after a crash the broker is back
# for its devices, and alerts for its staff, that much sooner.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY contract ./contract
COPY common ./common
COPY broker ./broker
COPY ingest ./ingest
COPY alerts ./alerts
COPY dashboards ./dashboards
COPY device-sim ./device-sim
COPY config ./config
COPY scripts ./scripts
RUN npm run build
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/dashboards/app ./dashboards/app
COPY --from=build /app/config ./config
COPY --from=build /app/scripts/healthcheck.mjs ./scripts/healthcheck.mjs
# State lives under /var/lib/carewatch (spool, alert journal, broker store); created here and owned
# by `node` so that the named volumes compose mounts there start writable for the non-root user.
RUN mkdir -p /var/lib/carewatch/spool /var/lib/carewatch/alerts /var/lib/carewatch/broker && chown -R node:node /var/lib/carewatch
VOLUME ["/var/lib/carewatch"]
USER node
# The default process is alerts (HTTP 8080); compose sets each service's own check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "scripts/healthcheck.mjs", "http://127.0.0.1:8080/healthz"]
CMD ["node", "dist/alerts/main.js"]
