# Wharf's container image: one image, entry points web, worker, beat, migrate, manage.
#
# Built by `make image` (buildah; see scripts/image-base.sh for machines that cannot pull
# the base image), or by any Dockerfile builder: docker build -t wharf .
# The front-end assets come from the build context: run `make assets` first (make image
# does), so the build needs no npm.
ARG BASE=docker.io/library/debian:bookworm-slim

FROM ${BASE} AS build
# A compiler and OpenLDAP's headers: python-ldap (LDAP sign-in) builds from source.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc libc6-dev \
      libldap2-dev libsasl2-dev \
 && rm -rf /var/lib/apt/lists/*
# Exactly the locked versions, hashes checked. PIP_CERT names a CA bundle mounted for this
# build only (a TLS-inspecting proxy's, see `make image`); it is never part of the image.
ARG PIP_CERT=
# The LDAP extra too (requirements-ldap.lock: the same pins plus python-ldap and
# django-auth-ldap), so the image signs in through LDAP when WHARF_LDAP_* is set.
COPY requirements.lock requirements-ldap.lock /tmp/
RUN python3 -m venv /opt/wharf/venv \
 && /opt/wharf/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      ${PIP_CERT:+--cert "$PIP_CERT"} --require-hashes -r /tmp/requirements.lock \
 && /opt/wharf/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      ${PIP_CERT:+--cert "$PIP_CERT"} --require-hashes --no-build-isolation \
      -r /tmp/requirements-ldap.lock
COPY . /app
WORKDIR /app
# Wharf itself, without resolving anything again; then the static files, collected once
# into a folder the read-only image serves from (whitenoise), and byte-code compiled;
# pip and setuptools are not needed to run (23 MB less).
RUN /opt/wharf/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      --no-deps --no-build-isolation . \
 && rm -rf build *.egg-info \
 && DEBUG=0 SECRET_KEY=collectstatic-only WHARF_ENCRYPTION_KEYS=unused \
    WHARF_VAR_DIR=/tmp/build-var WHARF_STATIC_ROOT=/opt/wharf/static \
    /opt/wharf/venv/bin/python manage.py collectstatic --noinput --verbosity 0 \
 && rm -rf /tmp/build-var \
 && /opt/wharf/venv/bin/python -m compileall -q /app \
 && /opt/wharf/venv/bin/python -m pip uninstall --yes --quiet pip setuptools

FROM ${BASE}
# gpg: Helm provenance checks; libldap: python-ldap's run-time library.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates gpg libldap-2.5-0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin wharf \
 && install -d -o wharf -g wharf -m 0750 /var/lib/wharf
COPY --from=build /opt/wharf /opt/wharf
COPY --from=build /app /app
# Writable at run time only: WHARF_VAR_DIR (a volume or tmpfs; beat's schedule lives
# there) and /tmp (a tmpfs). Everything else may be a read-only root file system.
ENV PATH=/opt/wharf/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    DEBUG=0 \
    PORT=8000 \
    WHARF_VAR_DIR=/var/lib/wharf \
    WHARF_STATIC_ROOT=/opt/wharf/static
WORKDIR /app
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "/app/scripts/healthcheck.py"]
ENTRYPOINT ["/app/scripts/entrypoint.sh"]
CMD ["web"]
