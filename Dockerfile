# ballast in a container: built with the same script as on a developer machine, shipped with only
# the binary and its runtime libraries, run as a non-root user.
#   docker build -t ballast .
#   docker run --rm -p 7070:7070 ballast serve --repo https://example.com/org/manifests.git \
#       --listen 0.0.0.0:7070
# An agent that runs pods' images through the host's engine needs its socket (and root, or the
# docker group):
#   docker run --rm --network host -v /var/run/docker.sock:/var/run/docker.sock --user root \
#       ballast agent --server http://RECONCILER:7070 --name "$(hostname)" --runtime docker

FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh --build-only
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBALLAST_BUILD_TESTS=OFF \
        -DBALLAST_BUILD_BENCH=OFF \
    && cmake --build build -j "$(nproc)" --target ballast \
    && strip build/ballast

FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates git libgit2-1.5 libyaml-cpp0.7 libspdlog1.10 libfmt9 libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/ballast --uid 10001 ballast
COPY --from=build /src/build/ballast /usr/local/bin/ballast
USER ballast
WORKDIR /var/lib/ballast
EXPOSE 7070
ENTRYPOINT ["ballast"]
CMD ["--help"]
