# ballast in a container: built in Release (the configuration `make test` tests), shipped as a
# slim runtime stage holding only the binary and the Debian packages of its shared libraries,
# run as a non-root user.
#
#   scripts/build-image.sh          # podman, and the debian:bookworm-slim base made locally
#   docker build -t ballast .       # where a registry is reachable
#
#   podman run --rm --network host ballast:latest serve \
#       --repo https://git.example.com/team/manifests.git --listen 0.0.0.0:7070 \
#       --token-file /run/secrets/ballast-token
# An agent that runs pods' images through the host's engine needs its socket (and root, or the
# docker group), and host networking for its Service proxies:
#   podman run --rm --network host -v /run/podman/podman.sock:/var/run/docker.sock --user root \
#       ballast:latest agent --server http://RECONCILER:7070 --name "$(hostname)" --runtime docker

FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh --build-only
COPY . .
ARG REVISION=unknown
# The runtime stage installs the packages dpkg-shlibdeps names for the binary (the same tool
# that computes the .deb's Depends:), so the two never drift apart.
# ccache in a cache mount: a rebuild after a small change compiles only what changed.
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBALLAST_BUILD_TESTS=OFF \
        -DBALLAST_BUILD_BENCH=OFF -DBALLAST_GIT_COMMIT="${REVISION}" \
        -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    && cmake --build build -j "$(nproc)" --target ballast \
    && strip build/ballast \
    && mkdir -p /tmp/shlibs/debian && cd /tmp/shlibs \
    && printf 'Source: ballast\n\nPackage: ballast\nArchitecture: any\n' > debian/control \
    && dpkg-shlibdeps -O /src/build/ballast \
        | sed -e 's/^shlibs:Depends=//' -e 's/ ([^)]*)//g' -e 's/, /\n/g' > /src/build/runtime-packages \
    && test -s /src/build/runtime-packages

FROM debian:bookworm-slim
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="ballast" \
      org.opencontainers.image.description="GitOps reconciler with its own lightweight cluster" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
# age: unwraps the data keys of SOPS-encrypted manifests (--age-identity-file).
COPY --from=build /src/build/runtime-packages /usr/share/ballast/runtime-packages
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates age $(cat /usr/share/ballast/runtime-packages) \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
    && useradd --system --create-home --home-dir /var/lib/ballast --uid 10001 \
        --shell /usr/sbin/nologin ballast
COPY --from=build /src/build/ballast /usr/bin/ballast
USER ballast
WORKDIR /var/lib/ballast
# Where the HEALTHCHECK (and the client commands) find serve: set it with -e when --listen
# names another port.
ENV BALLAST_SERVER=http://127.0.0.1:7070
EXPOSE 7070
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["ballast", "healthcheck"]
ENTRYPOINT ["ballast"]
CMD ["--help"]
