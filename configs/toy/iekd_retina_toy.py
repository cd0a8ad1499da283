# IE-KD on the toy data: toy RetinaNet student (ResNet-18/4, 64-ch FPN, P3-P7) <- toy teacher (ResNet-18/2), the
# authors' losses and weights (natural halves, weights 1), the teacher's auto-encoder trained online (see
# configs/bccd/iekd_retina_bccd.py; configs/bccd/ablations/iekd_two_stage.py has the authors' two-stage form).
_base_ = ['./retinanet_toy_student.py', '../_base_/toy_teacher.py']

distill = [dict(type='IEKD', phase='joint', split='natural', exploration='l1', inherit_weight=1.0,
                explore_weight=1.0)]
