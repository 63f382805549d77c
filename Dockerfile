# syntax=docker/dockerfile:1
# Build stage: install everything, compile TypeScript, then drop the dev dependencies.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
# `npm ci` runs the `prepare` script, which compiles src and migrations into dist/.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

# Runtime stage: the compiled server and production dependencies only, as a non-root user.
FROM node:20-slim
# Metrics and health probes on a management port of their own (README Metrics): bound to every
# interface of the container, so a scraper on the container network reaches it; publish only
# PORT (docker run -p 8080:8080), never METRICS_PORT.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9464 \
    DATA_DIR=/var/lib/latchkey
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The embedded store (when DATABASE_URL is unset) lives in a volume only the `node` user may
# read (password hashes, personal data, the key-encryption secret); the server keeps it 0700.
RUN install -d -m 0700 -o node -g node /var/lib/latchkey
VOLUME ["/var/lib/latchkey"]
USER node
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM from `docker stop` reaches node directly (exec form): it drains and exits.
CMD ["node", "dist/src/main.js"]
