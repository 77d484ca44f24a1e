"""Pictures of data, training and features (matplotlib, Agg; PNG, or GIF for motion).

- `skeleton`: one sample of a data file as an animated skeleton, optionally beside its
  normal and extreme augmented views (`python -m freqjax.visualize skeleton ...`).
- `curves`: training curves from a run's `metrics.jsonl` (`... curves --workdir RUN`).
- `embedding`: a t-SNE map of evaluation features coloured by class.
- `frest`: what each FreST block learned: filter magnitude per frequency and how often
  each frequency bin passes the threshold.

Nothing here is imported by training or evaluation at module level (they import a
picture function lazily where they write one), so training runs without matplotlib. The
package imports none of its modules: import the one you need.
"""
