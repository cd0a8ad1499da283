# Codistillation of two GFL students on BCCD's real photos, each on its own half of the training set, distilling
# from the other's stale copy with BCKD; weights exchanged every 50 iterations, distillation after a burn-in of 40%
# of training (the reference's 28 of 70 epochs).
# Launch on 2 processes (or any even number): tools/dist_train.sh configs/codistill/bckd_gfl_bccd.py 2
# Each peer gets the iterations of the 8-epoch model on all the data: 16 epochs of its half, the same schedule in
# iterations (cosine decay from the second half-epoch, the full data's first epoch).
_base_ = ['../bccd/gfl_bccd_student.py']

codistill = dict(peers=2, exchange_interval=50, burn_in=120, distillers=[dict(type='BCKD')], data='disjoint')
train_cfg = dict(max_epochs=16)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.05, by_epoch=True, begin=2, convert_to_iter_based=True),
]
