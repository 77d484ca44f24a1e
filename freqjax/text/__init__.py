"""Text branch: action descriptions, their CLIP embeddings and the tables training reads.

- `classes`: NTU RGB+D 60/120 and PKU-MMD class names, prompt templates.
- `descriptions`: per-class / per-sample (C2VL) description files; the synthetic classes'.
- `tokenizer`: an offline CLIP tokenizer for the random-init demo model and tests.
- `clip`: the frozen Flax CLIP text encoder (sentence embeddings, word features).
- `embed`: `python -m freqjax.text.embed`, descriptions -> `.npz`.
- `table`: `TextTable`, the `.npz` joined to a dataset for the input pipeline.

Importing this package imports neither jax nor transformers (only `clip` and `tokenizer`
do), so entry points can configure XLA first.
"""
