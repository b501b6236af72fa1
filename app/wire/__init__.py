"""The wire facts, each written once: the Confluent framing (``framing``), the topic roles and the stock requests
topic's name (``roles``), the record header names (``headers``) and typed reads of decoded values (``fields``).
The Avro enum symbols are read from the .avsc files beside them, in ``schemas.symbols``.

Import the submodules themselves: this package imports none of them, so that ``schemas`` may name its roles from
``app.wire.roles``. Pure: no Kafka, registry, database or Faust library, so the pure cores (app.generation,
app.derivation, app.inventory) may import it.
"""
