"""Developer tools (not part of the ``netflix_elt`` runtime package): run from the repository."""
