"""Evaluation: protocols on fixed features, fine-tuning, metrics and reports.

- `subsets`: class-balanced label subsets (semi-supervised) and the minival split.
- `linear_probe`: a linear classifier trained on frozen features (SkeletonCLR recipe).
- `knn`: weighted cosine k-nearest-neighbour classification.
- `finetune`: the data-parallel fine-tuning step and loop (semi-supervised, full).
- `metrics`: top-k accuracy, per-class accuracy, confusion matrix, most-confused pairs.
- `report`: the `workdir/eval/<protocol>/` folder a person reads.
- `records`: what each protocol records besides its scores (`results.json["extra"]`).

Accuracies are in percent throughout, as in the published tables.
"""
