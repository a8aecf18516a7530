# syntax=docker/dockerfile:1
# amqp-playground: the page (wasm) and the bridge in one small image.
#   docker compose up --build     → http://localhost:8080/
# (Add `target/` to a .dockerignore to keep the build context small.)

# ---- build: the wasm front end and the bridge binary -------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-unknown-unknown
COPY . .
# static/pkg/{web.js,web_bg.wasm}: built offline with wasm-bindgen as a library.
RUN cargo xtask build-web
RUN cargo build --release -p bridge \
 && cp target/release/bridge /usr/local/bin/bridge

# ---- runtime ------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /usr/local/bin/bridge /usr/local/bin/bridge
COPY --from=build /src/static /app/static
ENV BIND=0.0.0.0:8080 \
    STATIC_DIR=/app/static \
    RUST_LOG=info
EXPOSE 8080
USER nobody
HEALTHCHECK --interval=10s --timeout=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
CMD ["bridge"]
