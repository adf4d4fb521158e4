"""gridflow.dataflows."""
