# treadle in a container: a small, non-root image whose PID 1 is the server itself.
#
#   docker build -t treadle .
#   docker run --rm -p 8000:8000 treadle                       # serves examples/hello.py
#   docker run --rm -p 8000:8000 -v "$PWD:/app" treadle myapp:app   # ./myapp.py, app = ...
#   docker run --rm -p 8000:8000 -e TREADLE_THREADS=16 treadle  # any setting as TREADLE_<NAME>
#
# Settings come from TREADLE_* environment variables or a TOML file mounted at
# /app/treadle.toml (read automatically from the working directory) or named by TREADLE_CONFIG.

ARG PYTHON_IMAGE=python:3.13.1-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# Only what the package needs: a change to tests or docs does not rebuild this layer.
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY config ./config
COPY server ./server
COPY src ./src
RUN python -m venv /opt/treadle \
 && /opt/treadle/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/treadle/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TREADLE_BIND=0.0.0.0:8000
RUN groupadd --system --gid 10001 treadle \
 && useradd --system --uid 10001 --gid treadle --no-create-home --shell /usr/sbin/nologin treadle
COPY --from=build /opt/treadle /opt/treadle
WORKDIR /app
COPY examples/hello.py ./examples/hello.py
USER treadle:treadle
EXPOSE 8000
# The server finishes requests in flight on SIGTERM (within graceful_timeout, 30 s by default;
# keep `docker stop --time` / Kubernetes terminationGracePeriodSeconds above it).
STOPSIGNAL SIGTERM
# Any HTTP answer means the server is up; only a failed connection is unhealthy. The probe
# follows TREADLE_BIND's first HOST:PORT (else 8000) and speaks TLS when TREADLE_CERTFILE is
# set; with the port or TLS set only in a TOML file, give the container its own HEALTHCHECK.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, ssl, http.client as h; b = os.environ.get('TREADLE_BIND', '').split(',')[0]; p = int(b.rpartition(':')[2]) if b[-1:].isdigit() and not b.startswith(('unix:', 'fd:')) else 8000; c = h.HTTPSConnection('127.0.0.1', p, timeout=2, context=ssl._create_unverified_context()) if os.environ.get('TREADLE_CERTFILE') else h.HTTPConnection('127.0.0.1', p, timeout=2); c.request('GET', '/'); c.getresponse()"]
ENTRYPOINT ["treadle"]
CMD ["examples.hello:app"]
