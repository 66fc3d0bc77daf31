"""Pruning criteria, procedures and real channel removal."""
