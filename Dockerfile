# Production image: every service binary; docker-compose picks one per container.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
ENV SQLX_OFFLINE=true
RUN cargo build --release --locked -p backoffice -p payment -p redemption -p indexer

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 brandmint \
    && mkdir -p /var/lib/brandmint/storage && chown brandmint /var/lib/brandmint/storage
COPY --from=build /src/target/release/backoffice /src/target/release/payment \
    /src/target/release/redemption /src/target/release/indexer /usr/local/bin/
USER brandmint
