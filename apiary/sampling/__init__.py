"""X-Ray sampling: rules (``rules.py``), targets and statistics (``targets.py``), decisions (``decide.py``)."""
