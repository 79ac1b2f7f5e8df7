"""The pure core: the job contract, decisions, timing, calling hours and limits. No I/O."""
