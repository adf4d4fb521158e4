"""gridflow.operators."""
