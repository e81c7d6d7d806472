"""Hook specifications (:mod:`.specs`) and the daemon's hook manager (:mod:`.manager`)."""
