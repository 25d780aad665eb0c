"""The headless-Chromium helper moved to ``netflix_elt.browser`` (project tooling uses it too:
``netflix-elt screenshots``). Re-exported here so tests can keep importing it from the tests package."""

from netflix_elt.browser import *  # noqa: F401,F403
from netflix_elt.browser import BrowserError, PageReport, find_chromium, render_page  # noqa: F401
