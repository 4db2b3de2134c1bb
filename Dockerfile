# One image for overlay-master and overlay-agent.
#
# Users:   docker-compose build              (BASE_IMAGE defaults to a stock Python image;
#                                             Python packages come from PyPI)
# Offline: scripts/compose-image              (builds a Debian base with debootstrap and a
#                                             wheelhouse on the host; see README)
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# iproute2/nftables/CNI plugins for the agent. A debootstrap base already has them (and no
# network inside the build); a stock image installs them here.
RUN if ! command -v ip >/dev/null || ! command -v nft >/dev/null || [ ! -x /usr/lib/cni/bridge ]; then \
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            iproute2 iputils-ping nftables containernetworking-plugins procps \
        && rm -rf /var/lib/apt/lists/*; \
    fi

COPY . /src
RUN python3 -m venv /opt/overlay \
    && if ls /src/build/wheelhouse/*.whl >/dev/null 2>&1; then \
           /opt/overlay/bin/pip install --no-index --find-links /src/build/wheelhouse overlay; \
       else \
           /opt/overlay/bin/pip install /src; \
       fi \
    && install -m 0755 /src/deploy/overlay-container /usr/local/bin/overlay-container \
    && rm -rf /src
ENV PATH=/opt/overlay/bin:$PATH
# Nothing secret is baked in: tokens and the Raft password come from compose secrets at run time.
