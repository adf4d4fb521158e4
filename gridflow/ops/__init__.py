"""Running gridflow unattended: the checks before a live flow starts
(:mod:`gridflow.ops.preflight`) and the running accounts' status
(:mod:`gridflow.ops.status`)."""
