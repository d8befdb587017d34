"""Write the model files and pickles that tests/test_legacy_files.py loads.

They were written once, by sklearn_afm 0.1.0 at commit 34707c9 (before the
estimator state moved into its own schema), so that every later version is
tested against files it did not write itself.  Run from this folder:
``python make_files.py``; do not rerun it with a newer sklearn_afm.
"""

import pickle

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sklearn_afm import AFMClassifier, AFMRegressor


def main():
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({
        "colour": rng.choice(["red", "green", "blue", None], 120),
        "size": rng.choice(["S", "M", "L"], 120),
        "price": rng.gamma(2.0, 10.0, 120).round(2),
        "count": rng.randint(0, 4, 120),
    })
    frame.to_csv("frame.csv", index=False)
    frame = pd.read_csv("frame.csv")
    labels = np.where((frame["size"] == "L") ^ (frame["price"] > 20), "yes", "no")
    dense = rng.normal(size=(80, 5))
    dense[rng.rand(*dense.shape) < 0.3] = 0
    targets = np.column_stack([dense[:, 0] * dense[:, 1], dense[:, 2]])
    onehot = sp.random(90, 30, density=0.15, random_state=1, format="csr")
    classes = rng.randint(0, 3, 90)
    np.savez("data.npz", labels=labels, dense=dense, targets=targets,
             onehot=onehot.toarray(), classes=classes)

    small = {"embedding_size": 4, "attention_size": 3, "max_iter": 3}
    models = {
        "categorical": AFMClassifier(**small, random_state=0).fit(frame, labels),
        "regressor": AFMRegressor(**small, random_state=1).fit(dense, targets),
        "multiclass": AFMClassifier(**small, solver="adagrad", random_state=2).fit(
            onehot, classes),
    }
    inputs = {"categorical": frame, "regressor": dense, "multiclass": onehot}
    expected = {}
    for name, model in models.items():
        model.save(f"{name}.afm")
        with open(f"{name}.pkl", "wb") as file:
            pickle.dump(model, file)
        method = model.predict if name == "regressor" else model.predict_proba
        expected[name] = method(inputs[name])
        # What a continued fit gives, so that loading is shown to restore
        # the optimizer state too.
        model.partial_fit(inputs[name], targets if name == "regressor" else
                          (labels if name == "categorical" else classes))
        expected[f"{name}_continued"] = method(inputs[name])
    np.savez("expected.npz", **expected)


if __name__ == "__main__":
    main()
