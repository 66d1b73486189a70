# The rcfops image for Kubernetes: `rcfops serve` (the endpoint) and `rcfops artifact fetch`
# (its initContainer). Not built by the tests; the tests run the same binary as local
# processes from the rendered Deployment.
#
#   docker build -t registry.bank.example/rcfops:0.1.0 .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin rcfops

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/rcfops /usr/local/bin/rcfops
# The uid the rendered pods run as (runAsNonRoot, read-only root filesystem).
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["rcfops"]
CMD ["serve"]
