"""Packaging for retail-datagen: ``pip install .`` gives the ``app`` Faust app and its packages."""

from setuptools import find_packages, setup

setup(
    name="retail-datagen",
    version="0.1.0",
    description="A realistic retail streaming test-data generator built on Faust.",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["app", "app.*", "agents", "agents.*", "tables", "tables.*", "schemas", "db"]),
    package_data={"schemas": ["*.avsc"], "db": ["*.sql"], "app.web": ["static/*.html", "static/*.css", "static/*.js"]},
    install_requires=[
        # The six packages of the design card, at the versions verified together on Kafka 4.4.0.
        "faust-streaming==0.15.3",
        "confluent-kafka[avro,schemaregistry]==2.16.1",
        "fastavro==1.13.1",
        "aiopg==1.4.0",
        "mode-streaming==0.7.1",
        "rocksdict==0.3.29",
        # aiokafka >= 0.13 negotiates protocol versions; older ones cannot create topics on Kafka 4.
        "aiokafka==0.14.0",
        "pydantic==2.14.3",
        # Imported directly (DSN parsing, COPY in the seed), not only through aiopg.
        "psycopg2-binary==2.9.13",
        # Seeded reference data is only reproducible with the same fake-data tables: keep it pinned.
        "mimesis==22.2.0",
        # GET /metrics: Prometheus's text exposition format (app/metrics.py).
        "prometheus-client==0.26.0",
    ],
    extras_require={
        "test": [
            "pytest==9.2.0",
            "pytest-asyncio==1.5.0",
            "ruff==0.17.6",
            "mypy==2.4.1",
            "pyyaml==6.0.3",
            "playwright==1.65.2",
            "py-spy==0.4.3",
        ],
    },
)
