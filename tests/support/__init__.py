"""What the test modules share: builders of warehouse rows, the end-to-end checks, the Airflow
fixtures (an api-server app, a standalone Airflow with a browser), as plain modules and pytest plugins
(tests/conftest.py registers the fixture modules). No test module imports another test module
(tests/test_test_imports.py)."""
