"""`bpcalc check`: grade a student's hand-computed answers against the trace of one step.

sheet.py reads and validates the answer sheet, grade.py compares (tolerance, carried-forward
errors), diagnose.py names the slip that reproduces a wrong number. Rendering is in
bpcalc/render/check_report.py and bpcalc/render/answer_sheet.py.
"""
