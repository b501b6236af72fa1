"""The worker's web pages: the stock as JSON, the self-refreshing HTML page, ``/health``.

Split by job: ``shaping`` (the JSON bodies and query parsing, pure), ``page`` (the HTML page, from the files in
``static/``), ``stock_sources`` (where the stock is read: the Kafka table or Postgres), ``views`` (the Faust views
of the stock and the page) and ``health``. This package imports none of them, so the pure modules stay pure.
"""
