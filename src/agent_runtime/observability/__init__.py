"""What an operator sees of a running server: Prometheus metrics (`metrics`), OpenTelemetry
traces (`tracing`, with the optional `otel` extra), the access log (`access_log`), run log
lines with their ids (`context`, `log_format`) and LangSmith's per-run settings (`langsmith`).
The run observer (`observer`) feeds them all from the run manager's hooks. Each module is
imported where it is used, so that the CLI and a server without metrics or traces load only
what they need."""
