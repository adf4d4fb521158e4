"""gridflow.control."""
