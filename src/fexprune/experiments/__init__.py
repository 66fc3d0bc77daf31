"""Experiments: train, pic, sweep, reproduce."""
