"""Small MLflow projects for tests: a standard-library model (a pickled Doubler) trained and saved by `proj run`."""
from __future__ import annotations

# The model class, importable by the run and (from the saved code path) by whoever loads the model.
PREDICTOR = '''\
class Doubler:
    def __init__(self, k):
        self.k = k

    def predict(self, rows):
        return [self.k * r for r in rows]
'''
MODEL_MLPROJECT = ("entry_points:\n  main:\n    parameters:\n      k: {type: int, default: 3}\n"
                   "      data: {type: path, default: data.csv}\n    command: 'python train.py {k} {data}'\n")
MODEL_TRAIN = '''\
import sys
import proj_client
from predictor import Doubler
proj_client.log_metric("acc", 0.25 * int(sys.argv[1]))
proj_client.save_model(Doubler(int(sys.argv[1])), flavor="pickle")
'''
# A project whose run logs metric acc = k/4 and saves Doubler(k) as a pickle-flavor model (k defaults to 3).
MODEL_PROJECT = {"MLproject": MODEL_MLPROJECT, "predictor.py": PREDICTOR, "train.py": MODEL_TRAIN,
                 "data.csv": "x,y\n1,2\n"}
