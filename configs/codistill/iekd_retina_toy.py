# IE-KD's mutual-learning form: two toy RetinaNet students on the whole toy data, no fixed teacher; each splits its
# FPN channels into an inheriting and an exploring half against the other's features of the current step
# (exchanged every iteration, from the start), with the auto-encoder of the other's features trained online.
# Launch on 2 processes: tools/dist_train.sh configs/codistill/iekd_retina_toy.py 2
_base_ = ['../toy/retinanet_toy_student.py']

codistill = dict(peers=2, exchange_interval=1, burn_in=0, distillers=[dict(type='IEKD', phase='joint')],
                 data='shared')
