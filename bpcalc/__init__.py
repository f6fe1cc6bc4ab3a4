"""bpcalc: a step-by-step backpropagation calculator."""

__version__ = "0.1.0"
