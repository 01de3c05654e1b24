"""How models run: one module per backend, each behind its role's Protocol."""
