"""scikit-learn estimators over the AFM network: validation, encoding, the epoch loop.

The estimators are a facade: they validate inputs and parameters the way
scikit-learn does, encode targets and weights, and drive an
:class:`~sklearn_afm._engine.Engine` epoch by epoch.  Their persistent fitted
state is plain data (``_weights``, a list of numpy arrays), so a pickle holds
no TensorFlow object; the engine is rebuilt from it on first use.
"""

import threading
import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state, compute_sample_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._batching import as_row_source

# Guards the lazy rebuild of an estimator's engine when several threads
# predict at once; estimators cannot own a lock since they must pickle.
_ENGINE_LOCK = threading.Lock()

# early_stopping="auto" holds out a validation set from this many samples on,
# where a tenth of the data is enough to measure progress.
AUTO_EARLY_STOPPING_MIN_SAMPLES = 1000

# How validate_data checks X in every public method.
_X_CHECKS = {"accept_sparse": ("csr", "csc", "coo"), "dtype": (np.float32, np.float64)}


def _reject_non_numeric(estimator, X):
    """Raise a helpful error for input columns that are not numbers."""
    hint = (
        "Encode them first, for example with OneHotEncoder in a ColumnTransformer: "
        "make_column_transformer((OneHotEncoder(), categorical_columns), "
        "remainder=StandardScaler())."
    )
    dtypes = getattr(X, "dtypes", None)
    if dtypes is not None and hasattr(dtypes, "items"):
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        bad = [str(c) for c, dt in dtypes.items() if not (is_numeric_dtype(dt) or is_bool_dtype(dt))]
        if bad:
            raise ValueError(
                f"{type(estimator).__name__} needs numeric input, but column(s) {bad} "
                f"are not numeric. {hint}"
            )
    elif getattr(getattr(X, "dtype", None), "kind", None) in ("O", "U", "S"):
        try:
            np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as error:
            # The type of numpy's error is kept: TypeError for objects that
            # are no scalar, ValueError for strings that are no number.
            raise type(error)(
                f"{type(estimator).__name__} needs numeric input, but X holds values that "
                f"are not numbers ({error}). {hint}"
            ) from error


class BaseAFM(BaseEstimator):
    """Shared parameters, fitting loop and inspection of the AFM estimators.

    Not meant to be used directly; see :class:`AFMClassifier`.
    """

    _parameter_constraints = {
        "embedding_size": [Interval(Integral, 1, None, closed="left")],
        "attention_size": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "attention_dropout": [Interval(Real, 0, 1, closed="left")],
        "solver": [StrOptions({"adam", "adagrad", "sgd"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str],
    }

    def __init__(
        self,
        *,
        embedding_size,
        attention_size,
        alpha,
        dropout,
        attention_dropout,
        solver,
        learning_rate_init,
        batch_size,
        max_iter,
        early_stopping,
        validation_fraction,
        n_iter_no_change,
        tol,
        warm_start,
        random_state,
        verbose,
        device,
    ):
        self.embedding_size = embedding_size
        self.attention_size = attention_size
        self.alpha = alpha
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    # -- hooks of the concrete estimators -------------------------------------------

    def _encode_targets(self, y, warm):
        """Validate ``y``, fit the target encoding unless ``warm``; return encoded targets."""
        raise NotImplementedError

    def _validation_score(self, raw, y, sample_weight):
        """Score raw network outputs against encoded targets (higher is better)."""
        raise NotImplementedError

    # -- pickling ---------------------------------------------------------------------

    def __getstate__(self):
        state = super().__getstate__()
        # The engine holds TensorFlow objects tied to this process; the
        # weights in ``_weights`` are enough to rebuild it anywhere.
        state.pop("_engine", None)
        return state

    # -- fitting ----------------------------------------------------------------------

    def _validate_X(self, X, reset):
        _reject_non_numeric(self, X)
        return validate_data(self, X, reset=reset, **_X_CHECKS)

    def _network_params(self):
        return {
            "n_features": self.n_features_in_,
            "n_outputs": self._n_outputs,
            "embedding_size": self.embedding_size,
            "attention_size": self.attention_size,
            "attention_l2": float(self.alpha),
            "attention_dropout": float(self.attention_dropout),
            "dropout": float(self.dropout),
        }

    def _new_engine(self, network_params, weights=None):
        from ._engine import Engine, resolve_device

        return Engine(
            network_params,
            loss=self._loss,
            solver=self.solver,
            learning_rate=float(self.learning_rate_init),
            device=resolve_device(self.device),
            weights=weights,
        )

    def _get_engine(self):
        """Return the live engine, rebuilding it from ``_weights`` if needed."""
        engine = self.__dict__.get("_engine")
        if engine is None:
            with _ENGINE_LOCK:
                engine = self.__dict__.get("_engine")
                if engine is None:
                    engine = self._new_engine(self._network_config, self._weights)
                    self._engine = engine
        return engine

    def _fit(self, X, y, sample_weight):
        # Fitting replaces many attributes; any failure, including Ctrl-C,
        # puts every one of them back so a fitted estimator stays usable and
        # an unfitted one stays unfitted.
        snapshot = dict(self.__dict__)
        try:
            return self._fit_unprotected(X, y, sample_weight)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            # A warm-started engine was trained in place: rebuild it from the
            # weights of the last successful fit when next needed.
            self.__dict__.pop("_engine", None)
            raise

    def _fit_unprotected(self, X, y, sample_weight):
        warm = self.warm_start and hasattr(self, "_weights")
        _reject_non_numeric(self, X)
        X, y = validate_data(self, X, y, reset=not warm, **_X_CHECKS)
        y = self._encode_targets(y, warm)
        sample_weight = self._sample_weight(sample_weight, X, y)

        rng = check_random_state(self.random_state)
        network_seed = int(rng.randint(np.iinfo(np.int32).max))
        rows = np.arange(X.shape[0])
        early_stopping = self.early_stopping
        if early_stopping == "auto":
            early_stopping = X.shape[0] >= AUTO_EARLY_STOPPING_MIN_SAMPLES
        if early_stopping:
            stratify = y if self._loss != "squared" else None
            train_rows, val_rows = train_test_split(
                rows, test_size=self.validation_fraction, random_state=rng, stratify=stratify
            )
        else:
            train_rows, val_rows = rows, None
        weight_sum = sample_weight[train_rows].sum()
        if not weight_sum > 0:
            raise ValueError("The sample weights of the training rows sum to zero.")
        # Scaled to mean 1 so that the step size does not depend on the
        # weights' overall scale.
        train_weight = (sample_weight * (train_rows.shape[0] / weight_sum)).astype(np.float32)

        network_params = self._network_params()
        if warm:
            if {**network_params, "seed": None} != {**self._network_config, "seed": None}:
                raise ValueError(
                    "warm_start=True needs the same network as the previous fit; "
                    "changed: "
                    + ", ".join(
                        k for k in network_params if network_params[k] != self._network_config[k]
                    )
                )
            network_params = self._network_config
            engine = self._get_engine()
        else:
            network_params = {**network_params, "seed": network_seed}
            engine = self._new_engine(network_params)

        Xs = as_row_source(X)
        batch_size = min(self.batch_size, train_rows.shape[0])
        loss_curve = list(self.loss_curve_) if warm else []
        validation_scores = list(self.validation_scores_ or []) if warm else []
        best_loss = min(loss_curve, default=np.inf)
        best_score = max(validation_scores, default=-np.inf)
        best_weights = None
        n_iter = self.n_iter_ if warm else 0
        stale_epochs = 0
        converged = False
        for epoch in range(self.max_iter):
            start = time.perf_counter()
            loss = engine.train_epoch(
                Xs, y, train_weight, batch_size, rng.permutation(train_rows)
            )
            n_iter += 1
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"Training diverged: the loss became {loss} at epoch {n_iter}. "
                    "Lower learning_rate_init or scale the input features."
                )
            loss_curve.append(loss)
            message = f"Iteration {n_iter}, loss = {loss:.8f}"
            if early_stopping:
                raw = engine.predict(Xs, batch_size, rows=val_rows)
                score = self._validation_score(raw, y[val_rows], sample_weight[val_rows])
                validation_scores.append(score)
                message += f", validation score = {score:.6f}"
                improved = score > best_score + self.tol
                if score > best_score:
                    best_score = score
                    best_weights = engine.get_weights()
            else:
                improved = loss < best_loss - self.tol
                best_loss = min(best_loss, loss)
            stale_epochs = 0 if improved else stale_epochs + 1
            if self.verbose:
                print(f"{message} ({time.perf_counter() - start:.2f} s)")
            if stale_epochs >= self.n_iter_no_change:
                converged = True
                if self.verbose:
                    print(
                        f"{'Validation score' if early_stopping else 'Training loss'} did "
                        f"not improve more than tol={self.tol} for {self.n_iter_no_change} "
                        "consecutive epochs. Stopping."
                    )
                break
        if best_weights is not None:
            engine.network.set_weights(best_weights)
        if not converged:
            warnings.warn(
                f"Stochastic optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
            )

        self._engine = engine
        self._network_config = network_params
        self._weights = engine.get_weights()
        self.device_ = engine.device
        self.n_iter_ = n_iter
        self.loss_curve_ = loss_curve
        if early_stopping:
            self.validation_scores_ = validation_scores
            self.best_validation_score_ = best_score
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = best_loss
        self.attention_weights_ = self._mean_attention(Xs)
        return self

    def _sample_weight(self, sample_weight, X, y):
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        if not sample_weight.sum() > 0:
            raise ValueError("sample_weight must not be all zero.")
        return sample_weight

    # -- prediction and inspection ----------------------------------------------------

    def _raw_predict(self, X):
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self._get_engine().predict(as_row_source(X), self.batch_size)

    def _mean_attention(self, Xs):
        from ._inspection import mean_pair_attention

        return mean_pair_attention(
            self._get_engine().attention(Xs, self.batch_size), self.n_features_in_
        )

    def pair_attention(self, X):
        """Attention that each sample gives to each of its feature pairs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        attention : ndarray or scipy.sparse.csr_array of shape (n_samples, n_pairs)
            ``attention[r, p]`` is the softmax weight row ``r`` gives to pair
            ``pairs[p]``; each row sums to 1 over its present pairs (0 for a row
            with fewer than two non-zero features).  Sparse when ``X`` is sparse.
        pairs : ndarray of int64, shape (n_pairs, 2)
            Column indices ``(i, j)`` with ``i < j`` of every pair present in at
            least one row of ``X``, in lexicographic order; names are
            ``feature_names_in_[pairs]`` when fitted on a DataFrame.
        """
        import scipy.sparse as sp

        from ._inspection import per_sample_pair_attention

        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        batches = self._get_engine().attention(as_row_source(X), self.batch_size)
        return per_sample_pair_attention(batches, X.shape[0], sparse_output=sp.issparse(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class AFMClassifier(ClassifierMixin, BaseAFM):
    """Attentional Factorization Machine classifier.

    AFM (Xiao et al., IJCAI 2017) extends a factorization machine with an
    attention network that weighs each pairwise feature interaction: for the
    non-zero features ``X`` of a sample,

    ``logit = w0 + sum_i w_i x_i + p^T sum_{i<j in X} a_ij (v_i * v_j) x_i x_j``

    where ``a_ij`` is a softmax over the pairs of ``X`` of
    ``h^T ReLU(W (v_i * v_j) x_i x_j + b)``.  Only the pairs of non-zero
    features are formed, so sparse one-hot input costs ``nnz**2`` per row, not
    ``n_features**2``.  Multiclass targets get one output projection ``p`` per
    class and a softmax over classes.

    Parameters
    ----------
    embedding_size : int, default=16
        Size of each feature's embedding vector ``v_i``.
    attention_size : int, default=16
        Hidden size of the attention network (the paper's ``t``).
    alpha : float, default=1e-4
        L2 penalty on the attention network's weights ``W`` (the paper's lambda).
    dropout : float, default=0.0
        Dropout rate on the attention-pooled interaction vector during training.
    attention_dropout : float, default=0.0
        Dropout rate on the attention weights during training.
    solver : {"adam", "adagrad", "sgd"}, default="adam"
        Optimizer of the weights (the paper used Adagrad).
    learning_rate_init : float, default=0.01
        Learning rate of the optimizer.
    batch_size : int, default=256
        Rows per minibatch (capped at the number of training rows).  Also the
        number of rows per batch at prediction time.
    max_iter : int, default=100
        Maximum number of epochs (passes over the training data).
    early_stopping : "auto" or bool, default="auto"
        Whether to hold out ``validation_fraction`` of the training data
        (stratified) and stop when its accuracy stops improving; the weights of
        the best epoch are kept.  "auto" enables it when there are at least
        1000 training samples.
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping`` is True.
    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` (of the training loss,
        or of the validation score with early stopping) before stopping.
    tol : float, default=1e-4
        Minimum improvement that counts as progress.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``; see
        :func:`sklearn.utils.class_weight.compute_sample_weight`.
    warm_start : bool, default=False
        Whether ``fit`` continues from the previous fit's weights and
        optimizer state instead of starting afresh.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, shuffling, dropout and validation split.  An
        int makes fitting reproducible on CPU, across processes too.  Global
        random state (numpy's, TensorFlow's) is neither used nor changed when an
        int or RandomState is given.
    verbose : int, default=0
        Print the loss (and validation score) after each epoch when > 0.
    device : str, default="auto"
        Where to train and predict: "auto" (the first GPU TensorFlow sees,
        else the CPU), "cpu", "gpu" or "gpu:N".

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when X was a DataFrame with
        string column names.
    attention_weights_ : ndarray of shape (n_features_in_, n_features_in_)
        Mean attention each feature pair received over the training rows where
        both features were non-zero; symmetric, 0 on the diagonal and for pairs
        never present.  A ``scipy.sparse.csr_array`` beyond 4096 features.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    best_loss_ : float or None
        Lowest training loss; None with early stopping.
    validation_scores_ : list of float or None
        Held-out accuracy after each epoch with early stopping, else None.
    best_validation_score_ : float or None
        Best held-out accuracy with early stopping, else None.
    n_iter_ : int
        Number of epochs run.
    device_ : str
        TensorFlow device the model was trained on, e.g. "/CPU:0".

    See Also
    --------
    sklearn.neural_network.MLPClassifier : Parameter names follow it.

    References
    ----------
    J. Xiao, H. Ye, X. He, H. Zhang, F. Wu and T.-S. Chua, "Attentional
    Factorization Machines: Learning the Weight of Feature Interactions via
    Attention Networks", IJCAI 2017.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_afm import AFMClassifier
    >>> X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    >>> clf = AFMClassifier(max_iter=20, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints = {
        **BaseAFM._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        *,
        embedding_size=16,
        attention_size=16,
        alpha=1e-4,
        dropout=0.0,
        attention_dropout=0.0,
        solver="adam",
        learning_rate_init=0.01,
        batch_size=256,
        max_iter=100,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        class_weight=None,
        warm_start=False,
        random_state=None,
        verbose=0,
        device="auto",
    ):
        super().__init__(
            embedding_size=embedding_size,
            attention_size=attention_size,
            alpha=alpha,
            dropout=dropout,
            attention_dropout=attention_dropout,
            solver=solver,
            learning_rate_init=learning_rate_init,
            batch_size=batch_size,
            max_iter=max_iter,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            warm_start=warm_start,
            random_state=random_state,
            verbose=verbose,
            device=device,
        )
        self.class_weight = class_weight

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Numeric training data; zero entries are absent features.  Sparse
            input (CSR, CSC, COO) is never densified.
        y : array-like of shape (n_samples,)
            Class labels (any hashable values, at least two classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples.

        Returns
        -------
        self : AFMClassifier
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight)

    @property
    def _n_outputs(self):
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    @property
    def _loss(self):
        return "binary" if len(self.classes_) == 2 else "multiclass"

    def _encode_targets(self, y, warm):
        check_classification_targets(y)
        encoder = LabelEncoder()
        codes = encoder.fit_transform(y)
        if warm:
            if not np.array_equal(encoder.classes_, self.classes_):
                raise ValueError(
                    f"warm_start=True needs the classes of the previous fit {self.classes_}, "
                    f"got {encoder.classes_}."
                )
        elif encoder.classes_.shape[0] < 2:
            raise ValueError(
                "The target needs samples of at least 2 classes, but the data contains "
                f"only one class: {encoder.classes_.tolist()}."
            )
        self.classes_ = encoder.classes_
        return codes.astype(np.float32 if self._loss == "binary" else np.int32)

    def _sample_weight(self, sample_weight, X, y):
        sample_weight = super()._sample_weight(sample_weight, X, y)
        if self.class_weight is not None:
            sample_weight = sample_weight * compute_sample_weight(self.class_weight, y)
        return sample_weight

    @staticmethod
    def _class_codes(raw):
        return (raw[:, 0] > 0).astype(int) if raw.shape[1] == 1 else raw.argmax(axis=1)

    def _validation_score(self, raw, y, sample_weight):
        return float(np.average(self._class_codes(raw) == y, weights=sample_weight))

    def decision_function(self, X):
        """Return the logits of the samples.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For binary targets the logit of ``classes_[1]``; for multiclass
            targets one logit per class.
        """
        raw = self._raw_predict(X)
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def predict_proba(self, X):
        """Return class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class in ``classes_``.
        """
        from scipy.special import expit, softmax

        raw = self._raw_predict(X)
        if raw.shape[1] == 1:
            positive = expit(raw[:, 0])
            return np.column_stack([1 - positive, positive])
        return softmax(raw, axis=1)

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels from ``classes_``.
        """
        codes = self._class_codes(self._raw_predict(X))
        return self.classes_[codes]
