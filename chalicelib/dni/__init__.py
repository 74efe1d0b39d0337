"""Dynamic number insertion: pools, visitor sessions, attribution and dni.js (`/dni/v1`)."""
