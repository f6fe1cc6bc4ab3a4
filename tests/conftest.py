"""Test-wide settings.

In CI (the CI environment variable is set) hypothesis runs derandomized: the same cases on
every run, so a submission cannot fail on a case that an earlier run never drew. Locally the
cases stay random, which is where new failures are found (BPCALC_FUZZ_EXAMPLES=20000 for a
longer hunt); a failure found there becomes a fixed test.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
