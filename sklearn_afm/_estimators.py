"""The public estimators: AFMClassifier and AFMRegressor.

Each is :class:`~sklearn_afm._base.BaseAFM` with its task: the target hooks
(label codes and log-loss, or standardised targets and R^2, from
:mod:`sklearn_afm._targets`) and the prediction methods of its kind.
"""

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils import compute_sample_weight
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_y

from . import _targets as targets
from ._base import BaseAFM, signature_with
from ._docstrings import document


class AFMClassifier(ClassifierMixin, BaseAFM):
    """Attentional Factorization Machine classifier.

    $model

    Multiclass targets get one output projection ``p`` per class and a softmax
    over classes.

    Parameters
    ----------$parameters

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.$attributes

    See Also
    --------
    AFMRegressor : The same model for regression.
    sklearn.neural_network.MLPClassifier : Parameter names follow it.
    $references

    Examples
    --------
    >>> from sklearn_afm import AFMClassifier, load_telco_churn
    >>> X, y = load_telco_churn(return_X_y=True)
    >>> clf = AFMClassifier(max_iter=5, random_state=0).fit(X[:1000], y[:1000])
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> clf.is_categorical_.sum()
    np.int64(15)
    """

    _parameter_constraints = {
        **BaseAFM._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(self, *, class_weight=None, **params):
        super().__init__(**params)
        self.class_weight = class_weight

    __init__.__signature__ = signature_with(BaseAFM.__init__, after="tol", class_weight=None)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Fit the model to data.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Training data; zero entries of numeric columns are absent
            features.  Sparse input (CSR, CSC, COO) is never densified.
        y : array-like of shape (n_samples,)
            Class labels (any hashable values, at least two classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples.
        $x_val
        y_val : array-like of shape (n_val,), default=None
            Its targets.
        sample_weight_val : array-like of shape (n_val,), default=None
            Its weights.

        Returns
        -------
        self : AFMClassifier
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, validation=(X_val, y_val, sample_weight_val))

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Update the model with one pass over the given data.

        Successive calls train on data too large for memory, chunk by chunk;
        early stopping does not apply.  See ``categories`` for categories
        that only later chunks hold.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,)
            Its class labels.
        classes : array-like of shape (n_classes,), default=None
            All the classes the model will ever see.  Required on the first
            call, as with :class:`~sklearn.linear_model.SGDClassifier`;
            optional afterwards, and then must be the same.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples.

        Returns
        -------
        self : AFMClassifier
            The updated estimator.
        """
        targets.check_partial_fit_classes(getattr(self, "classes_", None), classes)
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    @property
    def _loss(self):
        return targets.classification_loss(self.classes_)

    @property
    def _n_outputs(self):
        return targets.n_logits(self.classes_)

    def _output_names(self):
        return targets.logit_names(self.classes_)

    def _encode_y(self, y, reset, classes=None):
        y = _check_y(y, estimator=self)
        check_classification_targets(y)
        if reset:
            self.classes_ = targets.fit_classes(y, classes)
        return targets.encode_labels(y, self.classes_, first_fit=reset)

    def _sample_weight(self, sample_weight, X, y):
        sample_weight = super()._sample_weight(sample_weight, X, y)
        if self.class_weight is not None:
            # y holds class codes; class_weight is keyed by the labels.
            labels = self.classes_[y.astype(np.intp)]
            sample_weight = sample_weight * compute_sample_weight(self.class_weight, labels)
        return sample_weight

    def _validation_score(self, outputs, y, sample_weight):
        # The held-out log-loss, as HistGradientBoostingClassifier's early
        # stopping: unlike accuracy it moves smoothly from epoch to epoch, and
        # the epoch it picks has better-ranked probabilities (ROC AUC on the
        # Telco data: 0.857 against 0.851 with accuracy).
        return targets.negative_log_loss(outputs, y, sample_weight)

    def decision_function(self, X):
        """Return the logits of the samples.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For binary targets the logit of ``classes_[1]``; for multiclass
            targets one logit per class.
        """
        return targets.logits_to_scores(self._snapshot()._raw_predict(X))

    def predict_proba(self, X):
        """Return class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class in ``classes_``.
        """
        return targets.logits_to_proba(self._snapshot()._raw_predict(X))

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels from ``classes_``.
        """
        model = self._snapshot()
        codes = targets.logits_to_codes(model._raw_predict(X))
        return model.classes_[codes]


class AFMRegressor(RegressorMixin, BaseAFM):
    """Attentional Factorization Machine regressor.

    $model

    The targets are standardised internally (mean 0, variance 1 on the data
    of ``fit`` or of the first ``partial_fit`` call); several targets share
    the embeddings and attention and get one output projection each.  The
    loss is half the mean squared error of the standardised targets.

    Parameters
    ----------$parameters

    Attributes
    ----------$attributes

    See Also
    --------
    AFMClassifier : The same model for classification.
    sklearn.neural_network.MLPRegressor : Parameter names follow it.
    $references

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_afm import AFMRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 4))
    >>> y = X[:, 0] * X[:, 1] + X[:, 2]
    >>> reg = AFMRegressor(max_iter=20, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Fit the model to data.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Training data; zero entries of numeric columns are absent
            features.  Sparse input (CSR, CSC, COO) is never densified.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples.
        $x_val
        y_val : array-like of shape (n_val,) or (n_val, n_targets), default=None
            Its targets.
        sample_weight_val : array-like of shape (n_val,), default=None
            Its weights.

        Returns
        -------
        self : AFMRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, validation=(X_val, y_val, sample_weight_val))

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one pass over the given data.

        Successive calls train on data too large for memory, chunk by chunk;
        early stopping does not apply.  See ``categories`` for categories
        that only later chunks hold.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Its target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples.

        Returns
        -------
        self : AFMRegressor
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    _loss = "squared"

    @property
    def _n_outputs(self):
        return self._y_mean.shape[0]

    def _output_names(self):
        return targets.target_names(self._y_ndim, self._n_outputs)

    def _encode_y(self, y, reset, classes=None):
        y = _check_y(y, multi_output=True, y_numeric=True, estimator=self)
        if y.dtype.kind not in "biuf":
            # _check_y converts only object arrays; strings would fail later, unclearly.
            raise ValueError(
                f"{type(self).__name__} needs numeric targets, but y has dtype {y.dtype}."
            )
        columns = targets.as_columns(y)
        if reset:
            self._y_ndim = y.ndim
            self._y_mean, self._y_scale = targets.fit_standardisation(columns)
        elif columns.shape[1] != self._n_outputs:
            raise ValueError(
                f"y has {columns.shape[1]} target(s), but the previous fit had "
                f"{self._n_outputs}."
            )
        return targets.standardise(columns, self._y_mean, self._y_scale)

    def _validation_score(self, outputs, y, sample_weight):
        return targets.r2_of_standardised(outputs, y, sample_weight)

    def _output_units(self, bias, linear, interactions):
        return targets.unstandardise_terms(bias, linear, interactions, self._y_mean, self._y_scale)

    def predict(self, X):
        """Predict target values.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predicted values.
        """
        model = self._snapshot()
        return targets.unstandardise(
            model._raw_predict(X), model._y_mean, model._y_scale, model._y_ndim
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


document(AFMClassifier, score="negative log-loss", loss_note=" (log-loss)", extra_parameters="""
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``; see
        :func:`sklearn.utils.class_weight.compute_sample_weight`.""")
document(AFMRegressor, score="R^2", loss_note=" (half squared error of the standardised targets)",
          extra_parameters="")
