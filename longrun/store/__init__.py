"""Stores: the only code that speaks SQL. One interface, one module per engine."""
