"""fexprune: facial expression CNNs on SFEW and hidden-unit pruning."""

__version__ = "0.1.0"
