"""A Flask service with no OpenTelemetry code at all: ``opentelemetry-instrument`` adds everything.

Run by the test as ``opentelemetry-instrument python plain_flask_app.py`` with only OTEL_SERVICE_NAME,
OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_HEADERS set, as the zero-code guides show.
"""

from __future__ import annotations

import logging
import os

from flask import Flask, jsonify

app = Flask(__name__)
log = logging.getLogger("cruddur.home")


@app.route("/api/activities/home")
def home():
    log.warning("HomeActivities: 3 results")
    return jsonify([{"handle": "andrewbrown"}, {"handle": "worf"}, {"handle": "garek"}])


@app.route("/health")
def health():
    return "ok"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
