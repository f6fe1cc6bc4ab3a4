"""Tools for teachers: exercises with numbers a person can compute, one variant per student,
handouts, answer keys and worked solutions.

  section    the network file's `exercise:` section: how to draw the values, what to ask,
             the rounding rule, the title, instructions and conventions in words
  draw       values drawn on a grid (one decimal, integers, ...) into a copy of the network
  rules      what makes a draw degenerate or ambiguous, each rule with a name
  generate   `bpcalc exercise`: variant k from the seed and k alone, its files, the manifest
  handout    the handout of a variant (Markdown, LaTeX): given values, diagram, worksheet
  solution   the answer key (key.yaml, as `bpcalc check` reads it) and the worked solution
  pdf        pdflatex, where it is installed

Grading a whole class is in bpcalc/check/klass.py (on top of the checker); the diagrams are
in bpcalc/render/diagram.py.
"""
