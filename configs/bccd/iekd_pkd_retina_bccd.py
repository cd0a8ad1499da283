# IE-KD and PKD together on BCCD: PKD (its published weight 10) pulls every student channel's correlation toward the
# teacher's while IE-KD splits the same channels into an inheriting and an exploring half (configs/bccd/
# iekd_retina_bccd.py's setting).
_base_ = ['./iekd_retina_bccd.py']

distill = [dict(type='IEKD', phase='joint', split='natural', exploration='l1', inherit_weight=1.0,
                explore_weight=1.0),
           dict(type='PKD', loss_weight=10.0)]
