# Builds the single `spike` executable with `deno compile` and ships it in a
# minimal image (no shell, no curl: health checks run `spike status`).
# Needs network access to Deno's servers (for the denort runtime) and the
# npm registry at build time. compose.yaml runs every role from this image.
FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY cmd ./cmd
COPY lib ./lib
RUN deno install --frozen --entrypoint cmd/spike.ts \
 && deno task compile \
 && mkdir -p /state/ca /state/identities /state/data /state/recovery

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/spike /usr/local/bin/spike
# Mount points owned by the runtime user, so fresh named volumes are writable.
COPY --from=build --chown=65532:65532 /state/ca /ca
COPY --from=build --chown=65532:65532 /state/identities /identities
COPY --from=build --chown=65532:65532 /state/data /var/lib/spike
COPY --from=build --chown=65532:65532 /state/recovery /recovery
# Nexus keeps its SQLite database here; mount a volume on it.
ENV SPIKE_NEXUS_DATA_DIR=/var/lib/spike
# Server memory after floods of large bodies (docs/OPERATIONS.md, "Memory"):
# glibc maps blocks of 16 KiB and more apart and gives them back when freed.
# The binary carries the matching V8 flag (deno.json's compile task).
ENV MALLOC_MMAP_THRESHOLD_=16384
# Nexus's API (SPIKE_NEXUS_TLS_PORT) and a Keeper's (SPIKE_KEEPER_TLS_PORT), both mutual TLS.
EXPOSE 8553 8443
# distroless's "nonroot", by number so Kubernetes' runAsNonRoot can check it.
USER 65532:65532
# Liveness of a Nexus container (SPIKE_NEXUS_API_URL, default https://localhost:8553), its
# SVID checked with the container's own identity: a Nexus waiting for its root key is alive
# and must not be restarted for it, so this asks GET /health, not /ready. A Keeper container
# overrides it (compose.yaml: --keepers-only --keeper https://127.0.0.1:8443); one-shot
# roles disable it. Readiness is `spike status` without --live (see docs/OPERATIONS.md).
HEALTHCHECK --interval=10s --timeout=10s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/spike", "status", "--live", "--nexus-only", "--timeout", "5s"]
ENTRYPOINT ["/usr/local/bin/spike"]
CMD ["--help"]
