"""Management REST API (`/api/v1`): blueprints for the dashboard and scripts."""
