"""Figures, tables beside the paper's numbers, and the HTML report."""
