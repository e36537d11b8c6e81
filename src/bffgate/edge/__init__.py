"""The public edge below the endpoints: request context, problem boundary, HTTP fields, CSRF."""
