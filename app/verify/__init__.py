"""``faust -A app verify``: every promise the docs make, checked against the topics and Postgres.

Pure parts (no Kafka, registry, Postgres or HTTP import): ``results`` (a check's outcome), ``shares`` (the sampling
tolerance), ``expectations`` (what the settings promise), ``observe`` (what the records show, collected in one pass),
``relations`` (how derived events must relate) and ``checks`` (the list of checks). The edge: ``reader`` (the topics
to their high watermarks), ``sources`` (Postgres and the worker's inventory view) and ``command`` (the command).
"""
