# syntax=docker/dockerfile:1
#
# One image for the Node services of this monorepo. Node 24 strips TypeScript types natively, so
# there is no build step: the image holds the sources plus production node_modules, and the command
# picks the entry point (default: the engine).
#
#   docker build -t otp-assurance .
#   docker run --rm -e KAFKA_BROKERS=... -e SCHEMA_REGISTRY_URL=... -e REDIS_URL=... \
#     -e CHANNEL_HASH_SECRET=... -e METRICS_HOST=0.0.0.0 -p 9464:9464 otp-assurance
#
# The native stack (`npm start`, `npm run serve`) stays the default way to run; this is for users
# who have Docker (see docker-compose.yml).

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS base
WORKDIR /app
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

# --- manifests: only the files `npm ci` reads ------------------------------------------------------
# Copies the root package.json, package-lock.json and every workspace's package.json (expanded from
# the root `workspaces` globs, so a new workspace needs no edit here). The next stage copies just
# this output, so its `npm ci` layer stays cached until a manifest or the lockfile changes.
FROM base AS manifests
WORKDIR /src
COPY . .
RUN node --input-type=commonjs <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const { workspaces } = JSON.parse(fs.readFileSync('package.json', 'utf8'));
const files = [
  'package.json',
  'package-lock.json',
  ...fs.globSync(workspaces.map((w) => `${w}/package.json`)).sort(),
];
for (const f of files) {
  fs.mkdirSync(path.dirname(path.join('/out', f)), { recursive: true });
  fs.copyFileSync(f, path.join('/out', f));
}
console.log(files.join('\n'));
EOF

# --- deps: production dependencies of every workspace ---------------------------------------------
# --omit=dev: runtime code needs only the workspaces' own `dependencies`; the root devDependencies
#   are tooling (biome, typescript, turbo, @types/node, pino-pretty) and the `node` package that
#   ships Node 24 to machines with an older node, which this base image does not need.
# --omit=optional: only native speed-ups of test tooling (cpu-features) are optional.
# --ignore-scripts: the root `allowScripts` permits no install script other than `node`'s, and
#   that package is a devDependency.
FROM base AS deps
COPY --from=manifests /out/ ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --omit=dev --omit=optional --ignore-scripts

# --- runtime ---------------------------------------------------------------------------------------
FROM base AS runtime
# node_modules (root and any nested per-workspace ones) and the manifests, then the sources.
COPY --from=deps /app/ ./
COPY . .
# Sources stay root-owned and read-only for the service; it writes nothing to disk (logs go to stdout).
USER node
# /metrics and /healthz of the engine (set METRICS_HOST=0.0.0.0 so they are reachable from outside).
EXPOSE 9464
ENTRYPOINT ["node"]
CMD ["services/engine/src/main.ts"]
