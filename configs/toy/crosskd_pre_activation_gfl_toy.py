# CrossKD on the toy data, crossing from the student's head features before the ReLU of its last conv (the paper's
# text) instead of after it (the authors' code, the default): the crossing_input option, measured in docs/results.md.
_base_ = ['./crosskd_gfl_toy.py']

distill = [dict(type='CrossKD', reused_layer=2, crossing_input='pre_activation', cls_weight=1.0, box_loss='kl',
                box_weight=4.0)]
