# PKD on the toy DINO pair's neck (the four 256-channel ChannelMapper levels): the feature baseline of the query
# distillers, at PKD's published weight.
_base_ = ['./dino_toy_student.py', '../_base_/dino_toy_teacher.py']

distill = [dict(type='PKD', loss_weight=10.0)]
