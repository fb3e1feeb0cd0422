"""Query understanding: parsing, planning, tone restoration, spelling, acronyms, stop words (one home,
independent of the backend)."""
