"""pytest runs the examples of README.md and docs/ (``python -m pytest README.md docs``):
Sybil collects them, tests/docs/harness.py says how each runs and what stands in for the
servers the pages name."""

from tests.docs.harness import (  # noqa: F401  (fixtures the examples use)
    doc_flight_peer,
    doc_flight_server,
    doc_loopback,
    doc_page,
    doc_pki,
    doc_postgres_uri,
    doc_tmp,
    doc_zookeeper,
    sybil,
)
from tests.sources.conftest import postgres  # noqa: F401

pytest_collect_file = sybil.pytest()
