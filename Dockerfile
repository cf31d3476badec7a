# Images of the runtime (`tollgate`) and the operator (`tollgate-operator`), from one build:
#
#   docker build --target runtime  -t ghcr.io/tollgate-dev/tollgate:0.1.0 .
#   docker build --target operator -t ghcr.io/tollgate-dev/tollgate-operator:0.1.0 .
#
# Both run as the distroless `nonroot` user (uid 65532, the uid the chart and the operator's
# pod specs set) on a read-only root filesystem; the runtime writes only to its data volume.
# Not built in this repository's CI (no container engine there): build and push them before
# running e2e/cluster_e2e.py against a real cluster.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tollgate-runtime --bin tollgate \
 && cargo build --release --locked -p tollgate-operator \
 && cp target/release/tollgate target/release/tollgate-operator /usr/local/bin/

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /usr/local/bin/tollgate /usr/local/bin/tollgate
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve"]

FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build /usr/local/bin/tollgate-operator /usr/local/bin/tollgate-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tollgate-operator"]
