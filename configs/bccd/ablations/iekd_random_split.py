# IE-KD ablation: the halves of a fixed random channel permutation (split='random') instead of natural halves.
_base_ = ['../iekd_retina_bccd.py']

distill = [dict(type='IEKD', phase='joint', split='random', exploration='l1', inherit_weight=1.0,
                explore_weight=1.0)]
