# retail-datagen: the Faust worker, as `faust -A app worker -l info`.
#
#   docker build -t retail-datagen:latest .
#   docker run --rm -p 6066:6066 -e KAFKA_BOOTSTRAP=... -e SCHEMA_REGISTRY_URL=... -e PG_DSN=... retail-datagen:latest
#
# Every setting is an environment variable (see app/settings.py); docker-compose.yml passes them all.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# No compiler or headers: confluent-kafka, rocksdict, psycopg2-binary, fastavro, aiohttp and the
# other compiled dependencies all ship manylinux wheels for CPython 3.11.
WORKDIR /opt/retail-datagen
COPY . .
RUN pip install --no-cache-dir .

# An unprivileged user owning the one writable directory: Faust's RocksDB state (DATA_DIR).
RUN groupadd --system --gid 10001 datagen \
    && useradd --system --uid 10001 --gid datagen --home-dir /var/lib/datagen --no-create-home \
       --shell /usr/sbin/nologin datagen \
    && install -d -o datagen -g datagen -m 0750 /var/lib/datagen

# In a container the web server must listen on every interface (WEB_BIND), not on 127.0.0.1.
# WEB_HOST is the name other workers reach this one by: compose sets it to the service name.
ENV DATA_DIR=/var/lib/datagen \
    WEB_BIND=0.0.0.0 \
    WEB_PORT=6066

WORKDIR /var/lib/datagen
USER 10001:10001
EXPOSE 6066

# Healthy when the services the worker needs answer, read from the same variables and defaults
# as the worker (app.settings.load_settings): a TCP connection to the first Kafka bootstrap server,
# `select 1` on Postgres (PG_DSN), and GET $SCHEMA_REGISTRY_URL/subjects. Any failure raises: exit 1.
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, socket, urllib.request, psycopg2; \
from app.settings import load_settings; \
s = load_settings(os.environ); \
host, port = s.kafka_bootstrap.split(',')[0].rsplit(':', 1); \
socket.create_connection((host, int(port)), timeout=3).close(); \
conn = psycopg2.connect(s.pg_dsn.get_secret_value(), connect_timeout=3); \
conn.cursor().execute('select 1'); \
conn.close(); \
urllib.request.urlopen(s.schema_registry_url + '/subjects', timeout=3).close()"]

ENTRYPOINT ["faust", "-A", "app", "worker", "-l", "info"]
