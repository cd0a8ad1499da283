# MGD on the toy data. Its sum/N loss grows with the feature area: the toy FPN (128 px input) has about
# 1/130 of the positions of COCO's (800x1333), so alpha is scaled up from the published 2e-5.
_base_ = ['./retinanet_toy_student.py', '../_base_/toy_teacher.py']

distill = [dict(type='MGD', alpha_mgd=2e-3, lambda_mgd=0.65)]
