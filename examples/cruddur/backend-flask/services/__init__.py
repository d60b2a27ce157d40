"""Cruddur backend services: one module per service, as in the week-2 guides."""
