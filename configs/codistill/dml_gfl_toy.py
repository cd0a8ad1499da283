# Deep mutual learning (Zhang et al., 2018) as codistillation: two toy GFL students on the whole toy data, each
# distilling from the other's weights of the current step (exchanged every iteration), from the start.
# Launch on 2 processes: tools/dist_train.sh configs/codistill/dml_gfl_toy.py 2
_base_ = ['../toy/gfl_toy_student.py']

codistill = dict(peers=2, exchange_interval=1, burn_in=0, distillers=[dict(type='BCKD')], data='shared')
