"""Coverage-guided fuzzing of every decoder that reads bytes from outside (issue 21 §1).

- :mod:`fuzz.harness`: what a target is and the one rule it checks;
- :mod:`fuzz.targets`: the registry, one small module per target;
- :mod:`fuzz.corpus`: writes each target's seed corpus (``fuzz/corpus/<target>/``) from real messages;
- :mod:`fuzz.run`: one target under atheris (libFuzzer);
- ``python -m fuzz``: every target in turn for a time budget, with a table of executions and coverage.
"""
