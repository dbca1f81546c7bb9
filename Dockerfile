# Builds the single `spike` executable with `deno compile` and ships it in a
# minimal image. Needs network access to Deno's servers (for the denort
# runtime) and the npm registry at build time.
FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY cmd ./cmd
COPY lib ./lib
RUN deno install --frozen --entrypoint cmd/spike.ts \
 && deno task compile \
 && mkdir -p /state/ca /state/identities /state/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/spike /usr/local/bin/spike
# Mount points owned by the runtime user, so fresh named volumes are writable.
COPY --from=build --chown=65532:65532 /state/ca /ca
COPY --from=build --chown=65532:65532 /state/identities /identities
COPY --from=build --chown=65532:65532 /state/data /var/lib/spike
# Nexus keeps its SQLite database here; mount a volume on it.
ENV SPIKE_NEXUS_DATA_DIR=/var/lib/spike
# Server memory after floods of large bodies (docs/OPERATIONS.md, "Memory"):
# glibc maps blocks of 16 KiB and more apart and gives them back when freed.
# The binary carries the matching V8 flag (deno.json's compile task).
ENV MALLOC_MMAP_THRESHOLD_=16384
USER nonroot
ENTRYPOINT ["/usr/local/bin/spike"]
CMD ["--help"]
