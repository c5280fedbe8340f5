"""HTTP routes. Each API's routes are a codec over the one pipeline (:mod:`ferro.pipeline`):
a body parsed into an operation, an outcome encoded in that API's wire format and error
schema."""
