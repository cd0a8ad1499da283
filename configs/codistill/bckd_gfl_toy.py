# Codistillation of two toy GFL students (Anil et al., 2018): each trains on its own half of the toy data and
# distils from the other's stale copy with BCKD (binary KD of the class scores, the sigmoid form of the paper's
# prediction KL, and GIoU of the boxes). Weights are exchanged every 50 iterations (the reference's interval);
# distillation starts after a burn-in of 40% of training (the reference's 28 of 70 epochs).
# Launch on 2 processes (or any even number): tools/dist_train.sh configs/codistill/bckd_gfl_toy.py 2
# Each peer gets the iterations of the 6-epoch model on all the data: 12 epochs of its half (50 iterations each),
# with the same schedule in iterations (warm-up over 100, cosine decay from iteration 100).
_base_ = ['../toy/gfl_toy_student.py']

codistill = dict(peers=2, exchange_interval=50, burn_in=240, distillers=[dict(type='BCKD')], data='disjoint')
train_cfg = dict(max_epochs=12)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.05, by_epoch=True, begin=2, convert_to_iter_based=True),
]
