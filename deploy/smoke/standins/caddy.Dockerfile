# Stand-in for caddy:2, from Debian's caddy 2.6: the official image's paths (XDG dirs /config and /data, the
# Caddyfile at /etc/caddy/Caddyfile) and its command; wget for the healthcheck, as busybox has in the original.
ARG BASE=hardened-shop-standin/debian:bookworm
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends caddy wget ca-certificates \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /config /data
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
EXPOSE 80 443
WORKDIR /srv
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
