# One image for every carewatch process; docker-compose.yml picks the process with `command`.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm install --no-save tsx@4
COPY contract ./contract
COPY common ./common
COPY broker ./broker
COPY ingest ./ingest
COPY alerts ./alerts
COPY dashboards ./dashboards
COPY device-sim ./device-sim
COPY config ./config
ENV NODE_ENV=production
USER node
CMD ["node", "--import", "tsx", "alerts/main.ts"]
