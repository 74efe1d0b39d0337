"""Authentication and authorization: Cognito JWTs with roles, and publisher API keys."""
