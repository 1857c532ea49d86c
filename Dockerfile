# kbrackup container image: build with npm + tsc, run dist/ with production dependencies only.
# The base images are arguments so a build can use local or mirrored ones (the test suite builds
# from a locally made Debian + Node 24 base, as no registry is reachable there). The build image needs
# g++, make and python3 for node-gyp (node:24-bookworm has them, the -slim variant does not).
ARG BUILD_IMAGE=docker.io/library/node:24-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot
# Stamped into the OCI labels; CI passes the tag and commit (--build-arg VERSION=… --build-arg REVISION=…).
ARG VERSION=0.1.0
ARG REVISION=unknown

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# node-gyp compiles the platform addon (src/platform) against the headers that Node images keep
# beside their node binary; without this it would download them.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
# No install scripts: no dependency needs a native build (ssh2 falls back to pure JS crypto); the
# project's own addon is built by `npm run build` into dist/platform/.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# Production dependencies only, without what nothing loads at run time: type declarations, source
# maps, READMEs (licences stay), @types, and openpgp's browser builds (Node takes dist/node).
RUN npm run build \
 && find dist -name '*.map' -delete \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete \
 && find node_modules -type f -name '*.md' ! -iname 'licen[cs]e*' -delete \
 && rm -rf node_modules/@types node_modules/openpgp/dist/lightweight node_modules/openpgp/dist/openpgp.*

FROM ${RUNTIME_IMAGE}
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="kbrackup" \
      org.opencontainers.image.description="Encrypted, deduplicating, memory-frugal backup job for Kubernetes" \
      org.opencontainers.image.source="https://github.com/kbrackup/kbrackup" \
      org.opencontainers.image.url="https://github.com/kbrackup/kbrackup" \
      org.opencontainers.image.documentation="https://github.com/kbrackup/kbrackup/blob/main/docs/kubernetes.md" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The V8 heap is capped so that backup and restore fit a 64 MiB memory limit (measured in
# test/container.test.ts); the Helm chart derives it from the pod's memory limit instead. A 1 MiB young
# generation keeps short-lived chunk buffers from piling up: peak RSS ~77 instead of ~100 MiB, and steady.
# MALLOC_ARENA_MAX: glibc gives every thread (libuv's pool, the chunk thread) malloc arenas of its own;
# two arenas cut a 120,000-file backup's anonymous memory from 54-56 to 43-53 MiB inside 64 MiB.
# PATH: node lives in /nodejs/bin in distroless images, /usr/local/bin in node:* images.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-old-space-size=24 --max-semi-space-size=1" \
    MALLOC_ARENA_MAX=2 \
    KBRACKUP_TEMP_DIR=/tmp/kbrackup \
    PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin
# Numeric, so runAsNonRoot can verify it without a passwd entry.
USER 65532:65532
# node is PID 1 and exec'd directly: SIGTERM reaches the CLI, which stops cleanly and exits 143.
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["help"]
