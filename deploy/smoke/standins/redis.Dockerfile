# Stand-in for redis:7-bookworm, from Debian's redis-server 7.0 (redis-server and redis-cli on PATH).
# The official image is built with protected mode off by default (other containers connect without a
# password); Debian's binary is not, so a wrapper earlier on PATH passes --protected-mode no.
ARG BASE=hardened-shop-standin/debian:bookworm
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/* \
 && printf '#!/bin/sh\nexec /usr/bin/redis-server "$@" --protected-mode no\n' > /usr/local/bin/redis-server \
 && chmod +x /usr/local/bin/redis-server
USER redis
WORKDIR /tmp
EXPOSE 6379
CMD ["redis-server"]
