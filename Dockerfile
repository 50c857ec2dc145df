# Production image: every service binary (docker-compose picks one per container) and the operator
# command `brandmint` (create-admin, audit-verify: `docker compose exec backoffice brandmint --help`).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
ENV SQLX_OFFLINE=true
RUN cargo build --release --locked -p backoffice -p payment -p redemption -p indexer -p cli

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 brandmint \
    && mkdir -p /var/lib/brandmint/storage && chown brandmint /var/lib/brandmint/storage
COPY --from=build /src/target/release/backoffice /src/target/release/payment \
    /src/target/release/redemption /src/target/release/indexer /src/target/release/brandmint /usr/local/bin/
USER brandmint
