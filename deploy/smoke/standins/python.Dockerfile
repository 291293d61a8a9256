# Stand-in for python:3.11-slim-bookworm, from Debian's python3.11 (the same minor version).
# What the app image relies on: python3 at /usr/local/bin/python3, pip, CA certificates, no PEP 668 marker.
ARG BASE=hardened-shop-standin/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/* /usr/lib/python3.11/EXTERNALLY-MANAGED \
 && ln -s /usr/bin/python3.11 /usr/local/bin/python3 && ln -s /usr/bin/python3.11 /usr/local/bin/python
# This machine's own certificate authorities (an egress proxy may re-sign TLS), so pip and uv reach PyPI.
COPY local-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ENV LANG=C.UTF-8 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    UV_NATIVE_TLS=true
CMD ["python3"]
