"""The study level, after every model is scored: one tidy table of every score and what is read from it.

``tables`` (the tidy table and the tables derived from it) -> ``collect`` (rule collect_scores) ->
``statistics`` + ``analysis`` (rule analyse, ``brainalign analyse``) -> ``figures`` (rule figures: the figure
registry) -> ``findings``, ``sections``, ``caveats`` -> ``summary_page`` (rule summary).
"""
