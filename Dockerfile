# One image for every service: the command picks it (giftcloud serve auth|ingest|anonymise|archive|api).
FROM python:3.12-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /usr/local/bin/uv
WORKDIR /src
# the environment is built where the final image keeps it: its scripts name their python by path
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/giftcloud
COPY pyproject.toml uv.lock ./
COPY libs libs
COPY services services
COPY clients clients
# the guide (/guide) is built into the api package from here
COPY docs docs
RUN uv sync --frozen --no-dev --no-editable --package giftcloud --extra server
# OHIF's prebuilt viewer (@ohif/app from the npm registry, checked against its pinned
# SHA-512), served by api at /ohif/; nothing is fetched at run time
RUN /opt/giftcloud/bin/python -m giftcloud_api.ohif.install /opt/ohif

FROM python:3.12-slim
# dicom3tools' dciodvfy: a result re-identified at a site is validated before it leaves
RUN apt-get update && apt-get install -y --no-install-recommends dicom3tools \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin giftcloud
COPY --from=build /opt/giftcloud /opt/giftcloud
COPY --from=build /opt/ohif /opt/ohif
ENV PATH=/opt/giftcloud/bin:$PATH PYTHONUNBUFFERED=1 GIFTCLOUD_HOST=0.0.0.0
ENV GIFTCLOUD_API__OHIF_DIR=/opt/ohif
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["giftcloud"]
CMD ["serve", "api", "--port", "8000"]
