"""Stage 2: the retriever learns the ranker's distribution over candidate lists.

One module per step, each usable without Ray where it can be:

- ``lists``: what Stage 2 learns from (``Lists``), the training rows, and the targets of the
  ablations that skip the ranker (the LLM's permutation itself, gold judgements); pure.
- ``candidates``: candidate mining, what each question's list holds (the base top-n, re-mined
  with the current encoder on refresh).
- ``rescore``: the ranker's scores of candidate lists (a Ray Data actor pool), cached.
- ``dev``: the held-out dev split by document, and the dev-chosen weight average with the base.
- ``train``: the query-encoder training (passages frozen) and the Atlas-style refresh loop
  (both sides trained).
"""
