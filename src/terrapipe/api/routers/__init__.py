"""One router module per OGC API part: landing, processes, jobs, collections."""
