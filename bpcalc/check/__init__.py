"""`bpcalc check`: grade a student's hand-computed answers against the trace of their steps.

sheet.py reads and validates the answer sheet (its steps, its conventions: block);
conventions.py is how the sheet writes what bpcalc computes; runner.py runs the engine in
them with the student's numbers substituted; tolerance.py is the rounding rule, computed by
allowance.py (the engine's partial derivatives) and inside.py (the units' sub-steps);
grade.py compares (✓, ✗, ↪); diagnose.py names the slip that reproduces a wrong number.
Rendering is in bpcalc/render/check_report.py and bpcalc/render/answer_sheet.py.
"""
