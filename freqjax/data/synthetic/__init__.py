"""Synthetic NTU RGB+D-style skeleton actions: the dataset freqjax ships with.

A procedural generator of 14 action classes in the NTU RGB+D layout (25 joints, NTU
order, metres, Kinect camera space: y up, z the depth in front of the camera). Each sample
is a performer (a body with its own height, limb proportions and style) doing one action,
seen by one of a few cameras. The class names are
`freqjax.text.classes.SYNTHETIC_CLASS_NAMES` (also here as `CLASS_NAMES`).

How a sample is made, and where:
1. `kinematics`: a rest pose with the performer's bone lengths; a kinematic tree rooted at
   the base of the spine (plus a virtual lumbar joint so the spine can bend without
   tilting the hips).
2. `actions` (with `motion`): the action sets joint angles over a phase `u` in [0, 1]
   (time-warped per sample for speed variation) and, for the arms, wrist targets (mouth,
   partner's hand, partner's chest...) reached by two-link inverse kinematics, so every
   pose comes out of forward kinematics and bone lengths stay exactly constant. The feet
   stay on the floor (vertical grounding; horizontal anchoring of the stance feet), so
   sitting moves the hips down and back the way it does in reality.
3. `sampling`: variation: per-performer amplitude and speed, left-handed performers
   (one-person actions mirrored), the free hand now and then doing something incidental
   (hand on hip, scratching the head...), two-person samples in either body order.
4. `sampling`: scene: facing and position (two persons face each other), a camera view
   (rotation about y: view 1 frontal, 2 and 3 at +-45 degrees, plus jitter), camera height
   and tilt, slow body sway, then Gaussian sensor noise (larger on hand tips and thumbs)
   and, in about a quarter of the samples, a limb that jumps off for a few frames
   (tracking loss). Optionally (`elevation_degrees`, `roll_degrees`, off by default) each
   sample is also seen from a camera raised or lowered and rolled by a random angle: a
   harder variant in which orientation, not only the action, moves every coordinate.
5. `sampling`: idle frames before and after the action; the valid length varies (60-100 %
   of T) and the rest is zero-padded. An absent second person is all zeros.

`files` writes them as the field's NTU preparation writes NTU (`{split}_position.npy`,
`(N, 3, T, 25, 2)` float32, and `{split}_label.pkl` = `(sample_names, labels)`), with a
cross-performer and a cross-view split (`splits`).
`python -m freqjax.data.synthetic --out DIR`.
"""
from freqjax.data.synthetic.actions import TWO_PERSON_CLASSES
from freqjax.data.synthetic.files import main, write_dataset
from freqjax.data.synthetic.kinematics import NUM_JOINTS
from freqjax.data.synthetic.sampling import NUM_PERSONS, generate, view_angle, view_rotations
from freqjax.data.synthetic.splits import BENCHMARKS, xperformer_train_ids, xview_train_ids
from freqjax.text.classes import SYNTHETIC_CLASS_NAMES as CLASS_NAMES


__all__ = ("BENCHMARKS", "CLASS_NAMES", "NUM_JOINTS", "NUM_PERSONS", "TWO_PERSON_CLASSES",
           "generate", "main", "view_angle", "view_rotations", "write_dataset",
           "xperformer_train_ids", "xview_train_ids")
