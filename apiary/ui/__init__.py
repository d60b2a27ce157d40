"""The web UI: a static single-page front end (``static/``) and the few read queries only it needs (``queries.py``)."""
