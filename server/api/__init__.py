"""The HTTP edge: routes, the OpenAPI document, problem answers, the request-size guard."""
