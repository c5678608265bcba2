"""Boundary validation: rules over records plus the stored tree, producing a report."""
