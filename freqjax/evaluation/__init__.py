"""Encoder-independent evaluation: protocols on fixed features, metrics and reports.

- `subsets`: class-balanced label subsets (semi-supervised) and the minival split.
- `linear_probe`: a linear classifier trained on frozen features (SkeletonCLR recipe).
- `knn`: weighted cosine k-nearest-neighbour classification.
- `metrics`: top-k accuracy, per-class accuracy, confusion matrix, most-confused pairs.
- `report`: the `workdir/eval/<protocol>/` folder a person reads.

Accuracies are in percent throughout, as in the published tables.
"""
