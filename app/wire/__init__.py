"""The wire facts, each written once: the Confluent framing (``framing``), the Avro enum symbols read from the
.avsc files (``symbols``), the topic roles and the stock requests topic's name (``roles``) and the record header
names (``headers``).

Import the submodules themselves: this package imports none of them, so that ``schemas`` may name its roles from
``app.wire.roles`` while ``app.wire.symbols`` reads the schemas. Pure: no Kafka, registry, database or Faust
library, so the pure cores (app.generation, app.derivation, app.inventory) may import it.
"""
