"""The read stage: the queries the UI and the CLI show (`monitor`: quarantine and failures;
`progress`: runs in flight; `insights`: the analytics figures; `report`: the load summary).

Reads the warehouse, never writes it."""
